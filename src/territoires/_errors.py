"""Exception classes raised by territoires.

Every error carries a message written for the person who must act on it: what was
expected, what was found, and where (file, row, field or URL).

Every class derives from :class:`TerritoiresError`, so one ``except`` clause catches
whatever the library raises on purpose (the CLI turns them into « Erreur : … »), and
also from the builtin a Python caller would expect (as osmnx does), so that
``except ValueError`` or ``except KeyError`` keeps working:

============================  ===========================================
class                          also a
============================  ===========================================
:class:`InputError`            :class:`ValueError`
:class:`ColumnError`           :class:`InputError` and :class:`KeyError`
:class:`OutputError`           :class:`ValueError`
:class:`RulesError`            :class:`ValueError`
:class:`UnknownNameError`      :class:`KeyError` and :class:`ValueError`
:class:`UnknownRuleError`      :class:`RulesError` and :class:`UnknownNameError`
:class:`CatalogueError`        :class:`ValueError`
:class:`DataNotFoundError`     :class:`FileNotFoundError`
:class:`DataFileError`         :class:`ValueError`
:class:`DownloadError`         :class:`OSError` (like ``requests``' errors)
:class:`ChecksumError`         :class:`ValueError`
:class:`ReferenceDataError`    :class:`ValueError`
============================  ===========================================
"""

from __future__ import annotations


class TerritoiresError(Exception):
    """Base class of every error raised on purpose by territoires.

    Its text is the message itself, even for the subclasses of :class:`KeyError` (whose
    builtin text would be the quoted message).
    """

    def __str__(self) -> str:
        """Return the message, unquoted."""
        if len(self.args) == 1:
            return str(self.args[0])
        return Exception.__str__(self)


class InputError(TerritoiresError, ValueError):
    """An input (file, table, layer or argument value) cannot be used as given."""


class ColumnError(InputError, KeyError):
    """A column the computation needs is absent from a table."""


class OutputError(TerritoiresError, ValueError):
    """An output path is refused (unknown format, unusable name) before any work."""


class DataFileError(TerritoiresError, ValueError):
    """A reference file on disk cannot be read (truncated, corrupt or not the expected file)."""


class RulesError(TerritoiresError, ValueError):
    """A rule set has an invalid value (vintage, distance…)."""


class UnknownNameError(TerritoiresError, KeyError, ValueError):
    """A name is not among the known ones (territory, level…); the message lists them.

    Both a failed lookup and a bad argument value, like numpy's ``AxisError``.
    """


class UnknownRuleError(RulesError, UnknownNameError):
    """A rule set or an urban rule is asked for by a name that is not defined."""


class CatalogueError(TerritoiresError, ValueError):
    """The catalogue of sources is malformed or names an unknown dataset."""


class DataNotFoundError(TerritoiresError, FileNotFoundError):
    """A reference dataset is neither in the mirror, nor in the cache, nor downloadable."""


class DownloadError(TerritoiresError, OSError):
    """A download failed (network unreachable, HTTP error, interrupted transfer)."""


class ChecksumError(TerritoiresError, ValueError):
    """A downloaded file does not match the checksum recorded in the catalogue."""


class ReferenceDataError(TerritoiresError, ValueError):
    """A reference dataset holds what its rule cannot accept (e.g. not 22 métropoles)."""
