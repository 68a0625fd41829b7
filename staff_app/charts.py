"""Charts drawn on the server as SVG geometry: the template writes the shapes, no script draws them."""

from dataclasses import dataclass
from decimal import Decimal

WIDTH, HEIGHT = 720, 200
LEFT, RIGHT, TOP, BOTTOM = 64, 8, 12, 24  # room for the axis labels
PLOT_WIDTH, PLOT_HEIGHT = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str  # the day and its value, shown on hover (SVG <title>)


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    title: str


@dataclass(frozen=True)
class Line:
    name: str
    points: str  # "x,y x,y ..." for <polyline>; days without a value break nothing, they are left out
    css_class: str
    dots: list[Dot]  # a dot on each day with a value: a lone day draws no line, but its dot shows


@dataclass(frozen=True)
class Chart:
    title: str
    top_label: str  # the value at the top of the plot
    bars: list[Bar]
    lines: list[Line]
    first_day: str
    last_day: str
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    plot_bottom: int = TOP + PLOT_HEIGHT
    plot_right: int = LEFT + PLOT_WIDTH


def _scale(values: list) -> float:
    return float(max((value for value in values if value is not None), default=0) or 1)


def _slot(index: int, count: int) -> tuple[float, float]:
    """The left edge and width of day `index` of `count`, oldest at the left."""
    width = PLOT_WIDTH / count
    return LEFT + index * width, width


def bar_chart(title: str, days: list, values: list, unit: str = "") -> Chart:
    """One bar per day (oldest first); `values` in the days' order."""
    top = _scale(values)
    bars = []
    for index, (day, value) in enumerate(zip(days, values, strict=True)):
        left, width = _slot(index, len(days))
        height = PLOT_HEIGHT * float(value) / top
        bars.append(
            Bar(
                round(left + width * 0.1, 2), round(TOP + PLOT_HEIGHT - height, 2), round(width * 0.8, 2),
                round(height, 2), f"{day}: {unit}{value}",
            )
        )  # fmt: skip
    return Chart(title, _label(top, unit), bars, [], str(days[0]), str(days[-1]))


def line_chart(title: str, days: list, series: dict[str, list], unit: str = "") -> Chart:
    """One line per series (name: values in the days' order, None where a day has no value)."""
    top = _scale([value for values in series.values() for value in values])
    lines = []
    for number, (name, values) in enumerate(series.items()):
        dots = []
        for index, (day, value) in enumerate(zip(days, values, strict=True)):
            if value is None:
                continue
            left, width = _slot(index, len(days))
            x, y = left + width / 2, TOP + PLOT_HEIGHT - PLOT_HEIGHT * float(value) / top
            dots.append(Dot(round(x, 2), round(y, 2), f"{day}: {name} {value}{unit}"))
        points = " ".join(f"{dot.x:.2f},{dot.y:.2f}" for dot in dots)
        lines.append(Line(name, points, f"series-{number}", dots))
    return Chart(title, _label(top, unit), [], lines, str(days[0]), str(days[-1]))


def _label(top: float, unit: str) -> str:
    if unit == "$":
        return f"${Decimal(str(top)).quantize(Decimal('0.0001'))}"
    return f"{top:g}{unit}"
