"""Build args and test env whose names look like secrets: the rule on both sides, and lines that never show values."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildflow.model import Pipeline
from buildflow.quality.secret_names import env_name, looks_like_secret, secret_id, suspicious_names, words
from tests.conftest import dockerfiles, load

VALUE = "v4lue-that-must-never-be-shown-0d5c"
SECRET_LOOKING = [
    "HF_TOKEN",
    "TOKEN",
    "GITHUB_TOKEN",
    "hf_token",
    "hfToken",
    "HFTOKEN",
    "GH_TOKEN_2",
    "DB_PASSWORD",
    "MYSQL_ROOT_PASSWORD",
    "DBPASSWORD",
    "PASSWD",
    "GPG_PASSPHRASE",
    "CLIENT_SECRET",
    "SECRET_KEY_BASE",
    "OPENAI_API_KEY",
    "APIKEY",
    "stripeApiKey",
    "SSH_PRIVATE_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "SESSION_KEY",
    "REGISTRY_CREDENTIALS",
    "NPM_AUTH",
    "AUTH",
    "AUTH_TOKEN",
    "GIT_AUTH_HEADER",
    "HTTP_AUTHORIZATION",
    "my-token",
    "pip.token",
]
HARMLESS = [
    "TOKENIZER_VERSION",
    "HF_TOKENIZER",
    "MAX_TOKENS",
    "PASSWORD_MIN_LENGTH",
    "HF_TOKEN_FILE",
    "TOKEN_URL",
    "SECRET_NAME",
    "SECRETS_DIR",
    "AUTH_MODE",
    "AUTH_URL",
    "AUTH_USER",
    "USE_AUTH",
    "NO_PASSWORD",
    "AUTHOR",
    "AUTHOR_NAME",
    "OAUTH_ENABLED",
    "SECRETARY",
    "PASSTHROUGH",
    "KEY",
    "PUBLIC_KEY",
    "GPG_KEY",
    "CACHE_KEY",
    "API_URL",
    "ACCESS_LOG",
    "SESSION_ID",
    "KEYBOARD",
    "CUDA_VERSION",
    "BASE_IMAGE",
    "___",
]


@pytest.mark.parametrize("name", SECRET_LOOKING)
def test_names_that_look_like_secrets(name: str) -> None:
    """Each of these names is reported."""
    assert looks_like_secret(name)


@pytest.mark.parametrize("name", HARMLESS)
def test_names_that_do_not(name: str) -> None:
    """None of these is: settings about a secret, and words that only start like one."""
    assert not looks_like_secret(name)


def test_words_split_at_separators_and_camel_case_and_drop_trailing_digits() -> None:
    """Separators, camelCase and case do not change the words."""
    assert words("hfToken2") == words("HF_TOKEN") == words("hf-token") == ["HF", "TOKEN"]
    assert words("APIKey") == ["APIKEY"]


def test_suggested_secret_ids_and_variables_are_valid() -> None:
    """The advice names a valid secret id and environment variable, whatever the arg is called."""
    assert (secret_id("HF_TOKEN"), env_name("HF_TOKEN")) == ("hf_token", "HF_TOKEN")
    assert (secret_id("pip.token"), env_name("pip.token")) == ("pip.token", "pip_token")
    assert (secret_id("2FA TOKEN"), env_name("2FA TOKEN")) == ("2fa_token", "_2FA_TOKEN")


def pipeline(tmp_path: Path, targets: str, defaults: str = "") -> Pipeline:
    """A pipeline of the given targets (and defaults), every target with context '.'."""
    text = "version: 1\nregistry: localhost:5000/t\n" + defaults + "targets:\n" + targets
    return load(tmp_path, text, dockerfiles("."))


def test_a_build_arg_is_reported_with_its_file_line_field_and_what_to_do(tmp_path: Path) -> None:
    """The whole line for a build arg."""
    lines = suspicious_names(pipeline(tmp_path, f"  app:\n    args: {{HF_TOKEN: {VALUE}, CUDA: '12'}}\n"))
    assert lines == [
        f"{tmp_path / 'buildflow.yaml'}:5: targets.app.args.HF_TOKEN: looks like a secret; a build arg's value is"
        " kept in the image's history and in buildflow's build records — declare it under secrets:"
        " (secrets: {hf_token: {env: HF_TOKEN}}) and mount it with RUN --mount=type=secret,id=hf_token"
    ]


def test_a_test_env_variable_is_reported(tmp_path: Path) -> None:
    """Test env is checked too, with its own advice."""
    lines = suspicious_names(
        pipeline(
            tmp_path, f"  app:\n    test:\n      commands: [app --version]\n      env: {{API_KEY: {VALUE}, MODE: x}}\n"
        )
    )
    assert len(lines) == 1
    assert (
        ":7: targets.app.test.env.API_KEY: looks like a secret; a test env value is written in the pipeline file"
        in (lines[0])
    )


def test_harmless_names_give_nothing(tmp_path: Path) -> None:
    """A pipeline of harmless names gives no line."""
    args = ", ".join(f"{name}: x" for name in HARMLESS if name != "___")
    assert suspicious_names(pipeline(tmp_path, f"  app:\n    args: {{{args}}}\n")) == []


def test_values_never_appear_in_the_lines(tmp_path: Path) -> None:
    """Every finding is reported, and none shows its value."""
    args = ", ".join(f"'{name}': {VALUE}{index}" for index, name in enumerate(SECRET_LOOKING))
    targets = f"  app:\n    args: {{{args}}}\n    test: {{commands: [app --version], env: {{{args}}}}}\n"
    lines = suspicious_names(pipeline(tmp_path, targets))
    assert len(lines) == 2 * len(SECRET_LOOKING)
    assert not [line for line in lines if "v4lue" in line]


def test_a_matrix_target_is_reported_once_naming_its_images(tmp_path: Path) -> None:
    """One line per target, not per image, naming the first images."""
    targets = "  app:\n    matrix: {py: ['3.10', '3.11', '3.12', '3.13']}\n    args: {PY: '{py}', NPM_AUTH: '{py}'}\n"
    lines = suspicious_names(pipeline(tmp_path, targets))
    assert len(lines) == 1
    assert (
        "targets.app.args.NPM_AUTH: looks like a secret (in 4 images: app[py=3.10], app[py=3.11], app[py=3.12]"
        in (lines[0])
    )
    assert "and 1 more);" in lines[0]


def test_a_default_build_arg_is_reported_once_where_it_is_declared(tmp_path: Path) -> None:
    """An arg from defaults is reported at defaults.args once; a target that sets it itself, at its own args."""
    targets = f"  base: {{}}\n  app: {{from: base, args: {{PIP_TOKEN: {VALUE}}}}}\n  other: {{}}\n"
    lines = suspicious_names(pipeline(tmp_path, targets, defaults=f"defaults:\n  args: {{PIP_TOKEN: {VALUE}}}\n"))
    assert [line.split(": looks like")[0].rsplit(": ", 1)[1] for line in lines] == [
        "defaults.args.PIP_TOKEN",
        "targets.app.args.PIP_TOKEN",
    ]
    assert "(in 2 images: base, other)" in lines[0]
    assert ":4: defaults.args" in lines[0]


def test_lines_start_with_the_file_as_displayed(tmp_path: Path) -> None:
    """The CLI can pass the file name it shows in every other problem."""
    loaded = pipeline(tmp_path, "  app: {args: {HF_TOKEN: x}}\n")
    lines = suspicious_names(loaded, display="buildflow.yaml")
    assert lines[0].startswith("buildflow.yaml:4: targets.app.args.HF_TOKEN: looks like a secret;")


def test_findings_keep_file_order(tmp_path: Path) -> None:
    """Targets in file order, keys in the order they are written."""
    targets = "  b: {args: {B_TOKEN: x, A_PASSWORD: y}}\n  a: {args: {C_SECRET: z}}\n"
    lines = suspicious_names(pipeline(tmp_path, targets))
    assert [line.split(": looks like")[0].rsplit(".", 1)[1] for line in lines] == ["B_TOKEN", "A_PASSWORD", "C_SECRET"]


def test_an_unusual_name_is_quoted_like_every_other_field(tmp_path: Path) -> None:
    """A key with a space is quoted in the field path, and the advice stays valid."""
    lines = suspicious_names(pipeline(tmp_path, "  app: {args: {'pip token': x}}\n"))
    assert 'targets.app.args["pip token"]: looks like a secret' in lines[0]
    assert "(secrets: {pip_token: {env: pip_token}})" in lines[0]


def test_a_file_gone_since_loading_still_gives_every_finding_without_lines(tmp_path: Path) -> None:
    """Without the file to read again, findings keep their target paths and lose only line numbers."""
    loaded = pipeline(tmp_path, f"  app: {{args: {{HF_TOKEN: {VALUE}}}}}\n")
    loaded.file.unlink()
    assert [line.split(": looks like")[0] for line in suspicious_names(loaded)] == [
        f"{loaded.file}: targets.app.args.HF_TOKEN"
    ]


def test_a_pipeline_without_findings_is_not_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file is read again only when there is something to locate."""
    loaded = pipeline(tmp_path, "  app: {args: {CUDA: '12'}}\n")

    def refuse(path: Path, display: str) -> None:
        """Fail the test: the file must not be read when nothing was found."""
        raise AssertionError(f"{display} read again")

    monkeypatch.setattr("buildflow.pipeline.source.read_document", refuse)
    assert suspicious_names(loaded) == []
