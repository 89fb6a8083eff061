"""A step's options as one validated object, its defaults and help written once.

Each step has a frozen dataclass of options (`ccdpixfix.noise.NoiseOptions`,
`ccdpixfix.transients.TransientOptions`, `ccdpixfix.replace.ReplaceOptions`,
`ccdpixfix.pipeline.options.FixOptions`). The library's signatures take their
defaults from it, the command line its defaults and help texts, and
`StepOptions.from_keywords` checks the names and the values once, before any
work.
"""

import dataclasses
import difflib

__all__ = ["StepOptions", "check_names", "option", "option_of"]


def option(default, help):
    """A field of a `StepOptions` with its default and a one-line help text."""
    return dataclasses.field(default=default, metadata={"help": help})


def option_of(options, name):
    """A new field with the default and help of ``name`` in ``options``."""
    field = options.field(name)
    return dataclasses.field(default=field.default, metadata=field.metadata)


def check_names(given, known, owner):
    """Raise a TypeError naming each of ``given`` that is not in ``known``."""
    unknown = sorted(set(given) - set(known))
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        hints.append(name + (f" (did you mean {close[0]}?)" if close else ""))
    raise TypeError(
        f"unknown options: {', '.join(hints)} for {owner}; "
        f"it takes {', '.join(sorted(known))}"
    )


@dataclasses.dataclass(frozen=True)
class StepOptions:
    """Base of the options of a step: built from keywords, checked once."""

    #: The function the options are for, named in error messages.
    owner = "the step"

    @classmethod
    def field(cls, name):
        """The dataclass field ``name``."""
        return {field.name: field for field in dataclasses.fields(cls)}[name]

    @classmethod
    def names(cls):
        """Names of the options, in their order."""
        return tuple(field.name for field in dataclasses.fields(cls))

    @classmethod
    def default(cls, name):
        """Default value of the option ``name``."""
        return cls.field(name).default

    @classmethod
    def help(cls, name):
        """One-line help text of the option ``name``."""
        return cls.field(name).metadata["help"]

    @classmethod
    def from_keywords(cls, **keywords):
        """The options from keywords: unknown names and bad values raise.

        Raises
        ------
        TypeError
            If a name is not an option (with the closest option named).
        ValueError
            If a value is out of range (see `check`).
        """
        check_names(keywords, cls.names(), cls.owner)
        options = cls(**keywords)
        options.check()
        return options

    def check(self):
        """Raise a ValueError naming the first option out of range."""

    def as_dict(self):
        """The options as a dict of keywords."""
        return {name: getattr(self, name) for name in self.names()}
