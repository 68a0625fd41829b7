"""Static file names: hashed once collectstatic has run, the files' own names before it."""

from servestatic.storage import CompressedManifestStaticFilesStorage


class HashedWhenCollectedStorage(CompressedManifestStaticFilesStorage):
    """The manifest's hashed name (cached for good) for a collected file; the file's own name otherwise.

    Without collectstatic there is no manifest, and ServeStatic serves every name from the apps' static
    directories (SERVESTATIC_USE_FINDERS): a page still loads, and a file that exists nowhere is a 404
    when fetched, never an error while rendering the page that names it.
    """

    manifest_strict = True  # a name the manifest lacks raises here, and is answered unhashed below

    def stored_name(self, name: str) -> str:
        try:
            return super().stored_name(name)
        except ValueError:
            return name
