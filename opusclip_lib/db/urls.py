"""Database URLs: which backend, where, and the pool options carried in the query string.

``sqlite:///relative.db``, ``sqlite:////absolute/path.db``, ``sqlite:///:memory:``,
``postgresql://user:pw@host:5432/db?schema=demo&min_size=2&max_size=10``,
``mysql://root@127.0.0.1:3306/test?max_size=10`` (``mariadb://`` is an alias).
Unknown options are an error, so a typo never silently falls back to a default.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from opusclip_lib.errors import ConfigurationError

SCHEMES = {
    "sqlite": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
}
OPTIONS = {
    "sqlite": {"min_size", "max_size", "acquire_timeout", "busy_timeout", "synchronous",
               "journal_mode"},
    "postgresql": {"min_size", "max_size", "acquire_timeout", "schema"},
    "mysql": {"min_size", "max_size", "acquire_timeout"},
}


@dataclass(frozen=True, slots=True)
class DatabaseURL:
    backend: str
    host: str = ""
    port: int | None = None
    user: str = ""
    password: str = field(default="", repr=False)  # never shown: ``db.url`` is printed in notebooks
    database: str = ""
    options: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> str:
        """SQLite: the file (or ``:memory:``); same slot as the database name elsewhere."""
        return self.database

    def number(self, name: str, default: float) -> float:
        value = self.options.get(name)
        if value is None:
            return default
        try:
            return float(value)
        except ValueError:
            raise ConfigurationError(f"URL option {name}={value!r} is not a number") from None

    def with_database(self, database: str) -> DatabaseURL:
        return replace(self, database=database)

    def with_options(self, **options: str) -> DatabaseURL:
        return replace(self, options={**self.options, **options})

    def render(self, *, hide_password: bool = True) -> str:
        """Back to a URL string (password masked by default, for logs and notebook output)."""
        if self.backend == "sqlite":
            netloc = ""
        else:
            password = ("***" if hide_password else quote(self.password, safe="")
                        ) if self.password else ""
            auth = quote(self.user, safe="") + (f":{password}" if password else "")
            netloc = (f"{auth}@" if auth else "") + self.host
            netloc += f":{self.port}" if self.port else ""
        query = f"?{urlencode(self.options)}" if self.options else ""
        return f"{self.backend}://{netloc}/{self.database}{query}"

    def __str__(self) -> str:
        return self.render()


def parse_url(url: str) -> DatabaseURL:
    """Split ``url`` into a :class:`DatabaseURL`; ``ConfigurationError`` if it is unusable."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0].lower()
    backend = SCHEMES.get(scheme)
    if backend is None:
        raise ConfigurationError(
            f"unsupported database URL scheme {parts.scheme!r}; "
            "use sqlite://, postgresql:// or mysql://")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = set(options) - OPTIONS[backend]
    if unknown:
        raise ConfigurationError(
            f"unknown option(s) {sorted(unknown)} for {backend}; "
            f"known: {sorted(OPTIONS[backend])}")
    database = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
    try:
        port = parts.port
    except ValueError:  # urllib's message quotes what it read as the port: maybe the password
        raise ConfigurationError(
            f"bad port in the {backend} URL: it must be a number from 0 to 65535 (a password "
            "holding / ? # @ or : must be percent-encoded)") from None
    parsed = DatabaseURL(
        backend=backend,
        host=parts.hostname or "",
        port=port,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database=database,
        options=options,
    )
    if not database:
        raise ConfigurationError(f"{backend} URL needs a database name or file path: {parsed}")
    return parsed
