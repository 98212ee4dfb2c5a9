import pytest

from cli.main import api_command, build_parser, main, worker_command


def test_up_defaults_to_localhost_8000() -> None:
    args = build_parser().parse_args(["up"])
    assert (args.host, args.port, args.concurrency) == ("127.0.0.1", 8000, 1)


def test_worker_passes_celery_options_through(monkeypatch: pytest.MonkeyPatch) -> None:
    executed: list[list[str]] = []
    monkeypatch.setattr("os.execv", lambda path, argv: executed.append(argv))
    main(["worker", "--hostname", "gpu1@%h", "-Q", "gpu", "--concurrency", "2"])
    assert executed[0][-6:] == ["--hostname", "gpu1@%h", "-Q", "gpu", "--concurrency", "2"]
    assert executed[0][1:6] == ["-m", "celery", "-A", "worker.app", "worker"]


def test_each_worker_started_without_a_name_gets_one_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    executed: list[list[str]] = []
    monkeypatch.setattr("os.execv", lambda path, argv: executed.append(argv))
    main(["worker", "-Q", "cpu"])
    main(["worker", "-Q", "cpu"])
    names = [argv[argv.index("--hostname") + 1] for argv in executed]
    assert names[0] != names[1] and all(name.startswith("celery@") for name in names)
    main(["worker", "-n", "gpu1@%h"])  # a name given is kept
    assert "--hostname" not in executed[-1] and executed[-1][-2:] == ["-n", "gpu1@%h"]


def test_other_commands_refuse_unknown_options() -> None:
    with pytest.raises(SystemExit):
        main(["up", "--bogus"])


def test_api_and_worker_run_by_module_name() -> None:
    assert api_command("0.0.0.0", 9000, 2)[1:] == [
        "-m",
        "uvicorn",
        "api.app:create_app",
        "--factory",
        "--host",
        "0.0.0.0",
        "--port",
        "9000",
        "--workers",
        "2",
    ]
    assert worker_command(["-Q", "cpu"])[-2:] == ["-Q", "cpu"]


def test_migrate_creates_the_schema_in_the_data_dir(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine, inspect

    from core.settings import get_settings

    monkeypatch.setenv("D2L_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert main(["migrate"]) == 0
        assert main(["migrate"]) == 0  # idempotent
    finally:
        get_settings.cache_clear()
    engine = create_engine(f"sqlite:///{tmp_path}/d2l.sqlite3")
    assert "jobs" in inspect(engine).get_table_names()
    engine.dispose()
