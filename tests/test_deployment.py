"""The deployment files: Dockerfile, .dockerignore and docker-compose.yml, read as text.

No Docker engine runs here, so these tests check what can be checked without one: the files name
real config keys, keep the pins of setup.cfg, and require every secret.
"""

import configparser
import re
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from pain_actors.config import ENV_PREFIX, SECTIONS, load_config

REPO_ROOT = Path(__file__).resolve().parents[1]
SECRETS = {"POSTGRES_PASSWORD", "PAIN_SERVER_ADMIN_TOKEN", "PAIN_SERVER_SESSION_SECRET"}
# The Compose forms these files use: ${NAME}, ${NAME:-default} and ${NAME:?message}.
VARIABLE = re.compile(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}")


class MissingVariable(Exception):
    pass


def interpolate(value: str, environ: dict[str, str]) -> str:
    """Substitute variables the way Compose does for the forms above.

    ${NAME:?message} raises MissingVariable when NAME is unset or empty, as Compose stops then.
    """

    def substitute(match: re.Match) -> str:
        name, operator, argument = match.groups()
        if environ.get(name):
            return environ[name]
        if operator == ":?":
            raise MissingVariable(f"required variable {name} is missing a value: {argument}")
        return argument if operator == ":-" else ""

    return VARIABLE.sub(substitute, value)


def config_key(variable: str) -> tuple[str, str] | None:
    """Return (section, key) when the PAIN_ variable names a real config key, else None."""
    section, _, key = variable[len(ENV_PREFIX):].lower().partition("_")
    if section in SECTIONS and key in {field.name for field in fields(SECTIONS[section])}:
        return section, key
    return None


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dockerfile():
    return (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")


def test_compose_pain_variables_are_config_keys(compose):
    environment = compose["services"]["pain"]["environment"]
    variables = [name for name in environment if name.startswith(ENV_PREFIX)]
    assert variables
    for name in variables:
        assert config_key(name), f"{name} names no config key"


def test_compose_values_pass_config_validation(compose):
    environ = {name: "sample-secret-value" for name in SECRETS}
    environment = {name: interpolate(str(value), environ) for name, value in compose["services"]["pain"]["environment"].items()}
    config = load_config(None, environ=environment)
    assert config.storage.database_url == "postgresql://pain:sample-secret-value@postgres:5432/pain"
    assert config.server.admin_token == "sample-secret-value"
    assert config.server.session_secret == "sample-secret-value"
    assert config.server.secure_cookies is True


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_compose_missing_secret_is_an_error(compose, missing):
    environ = {name: "sample-secret-value" for name in SECRETS - {missing}}
    values = [str(value) for service in compose["services"].values() for value in service["environment"].values()]
    with pytest.raises(MissingVariable, match=f"required variable {missing} is missing a value: set {missing} in .env"):
        for value in values:
            interpolate(value, environ)


def test_compose_has_no_literal_secrets(compose):
    postgres = compose["services"]["postgres"]["environment"]
    pain = compose["services"]["pain"]["environment"]
    assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:\?[^}]+\}", postgres["POSTGRES_PASSWORD"])
    assert re.fullmatch(r"\$\{PAIN_SERVER_ADMIN_TOKEN:\?[^}]+\}", pain["PAIN_SERVER_ADMIN_TOKEN"])
    assert re.fullmatch(r"\$\{PAIN_SERVER_SESSION_SECRET:\?[^}]+\}", pain["PAIN_SERVER_SESSION_SECRET"])
    assert "${POSTGRES_PASSWORD:?" in pain["PAIN_STORAGE_DATABASE_URL"]


def test_compose_database_matches_postgres_service(compose):
    postgres = compose["services"]["postgres"]["environment"]
    url = interpolate(compose["services"]["pain"]["environment"]["PAIN_STORAGE_DATABASE_URL"], {"POSTGRES_PASSWORD": "pw"})
    assert url == f"postgresql://{postgres['POSTGRES_USER']}:pw@postgres:5432/{postgres['POSTGRES_DB']}"


def test_compose_waits_for_healthy_postgres(compose):
    pain = compose["services"]["pain"]
    assert pain["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in compose["services"]["postgres"]["healthcheck"]["test"]
    assert "/healthz" in " ".join(pain["healthcheck"]["test"])


def test_compose_named_volumes(compose):
    assert set(compose["volumes"]) == {"pain-data", "pain-db"}
    assert compose["services"]["pain"]["volumes"] == ["pain-data:/data"]
    assert compose["services"]["postgres"]["volumes"] == ["pain-db:/var/lib/postgresql/data"]


def test_dockerfile_torch_pins_match_setup_cfg(dockerfile):
    parser = configparser.ConfigParser()
    parser.read(REPO_ROOT / "setup.cfg", encoding="utf-8")
    requires = parser["options"]["install_requires"]
    arguments = dict(re.findall(r"^ARG (\w+)=(\S+)", dockerfile, re.MULTILINE))
    assert f"torch=={arguments['TORCH_VERSION']}" in requires.split()
    assert f"torchvision=={arguments['TORCHVISION_VERSION']}" in requires.split()


def test_dockerfile_pain_variables_are_config_keys(dockerfile):
    variables = re.findall(r"\b(PAIN_\w+)=", dockerfile)
    assert "PAIN_STORAGE_DATA_DIR" in variables
    for name in variables:
        assert config_key(name), f"{name} names no config key"


def test_dockerfile_non_root_health_check(dockerfile):
    user = re.search(r"^USER (\S+)", dockerfile, re.MULTILINE).group(1)
    assert user.split(":")[0] not in ("0", "root")
    assert re.search(r"^HEALTHCHECK .*\n.*/healthz", dockerfile, re.MULTILINE)
    assert 'VOLUME ["/data"]' in dockerfile
    assert "PAIN_STORAGE_DATA_DIR=/data" in dockerfile


def test_dockerignore_keeps_every_copied_path(dockerfile):
    rules = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    included = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert "*" in rules
    sources = []
    for line in dockerfile.splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            sources += line.split()[1:-1]
    assert sources
    for source in sources:
        assert source in included, f"{source} is copied but excluded by .dockerignore"
