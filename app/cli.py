"""The `trainwreck` command line. Each subcommand parses its arguments here and calls one module."""

from __future__ import annotations

import argparse
import gc
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from app.config import Settings
from app.diagnoser import build_diagnoser
from app.errors import TrainwreckError

if TYPE_CHECKING:
    from app.client.submit import SubmissionMetadata
    from app.services.rediagnose import RediagnosisReport

Handler = Callable[[argparse.Namespace, Settings], int]
# What `trainwreck[server]` adds; the base install (diagnose, check, run, submit) runs without them.
SERVER_MODULES = frozenset({"fastapi", "fastapi_offline", "starlette", "uvicorn", "sqlalchemy", "alembic", "psycopg",
                            "jinja2", "multipart", "python_multipart", "slack_sdk", "prometheus_client"})


class UsageError(TrainwreckError):
    code = "usage"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _progress_printer(total: int | None) -> Callable[[int], None] | None:
    """Progress on stderr for big files, when stderr is a terminal."""
    if total is None or total < 64 << 20 or not sys.stderr.isatty():
        return None
    last = [-1]

    def show(done: int) -> None:
        percent = min(100, done * 100 // total)
        if percent != last[0]:
            last[0] = percent
            sys.stderr.write(f"\rreading log… {percent}%")
            sys.stderr.flush()

    return show


def cmd_diagnose(args: argparse.Namespace, settings: Settings) -> int:
    """Diagnose a log offline and print the report or the JSON."""
    from app.report import render_report, terminal_width, wants_color

    diagnoser = build_diagnoser(settings, args.signatures, args.frameworks)
    if args.path == "-":
        source = sys.stdin.buffer
        size = None
    else:
        path = Path(args.path)
        if path.is_dir():
            raise UsageError(f"{args.path} is a directory: give the path of a log file")
        if not path.is_file():
            raise UsageError(f"no such file: {args.path}")
        source, size = path, path.stat().st_size
    progress = _progress_printer(size)
    diagnosis = diagnoser.diagnose(source, exit_code=args.exit_code, progress=progress)
    if progress is not None:
        sys.stderr.write("\r\x1b[K")
    if args.json:
        sys.stdout.write(json.dumps(diagnosis.to_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_report(diagnosis, color=wants_color(sys.stdout, no_color=settings.no_color),
                                 width=terminal_width(sys.stdout)))
    return 0


_MACHINE_FLAGS = (("gpu", str, "the GPU's name, as nvidia-smi prints it (A100-SXM4-80GB, V100, ...)"),
                  ("gpus", int, "GPUs per node"),
                  ("gpu_memory_gib", float, "memory of one GPU"),
                  ("host_memory_gib", float, "the host's memory"),
                  ("shm_gib", float, "the size of /dev/shm"),
                  ("disk_free_gib", float, "free disk at output_dir"))


def _launch_text(args: argparse.Namespace) -> str:
    """The command to check: --command's shell line, a script's launch line, or the words after `--`."""
    words = args.launch[1:] if args.launch[:1] == ["--"] else args.launch
    if args.command_line is not None:
        if words:
            raise UsageError("give the command after -- or as --command, not both")
        return str(args.command_line)
    if not words:
        raise UsageError("no command to check: trainwreck check [options] -- CMD ARGS... (or --command '...')")
    if len(words) == 1 and Path(words[0]).is_file():
        from app.check.local import read_script

        return read_script(Path(words[0]))
    import shlex

    return shlex.join(words)


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    """Check a launch command before it runs: exit 1 when a finding is an error."""
    from app.check.local import check_here
    from app.report import render_check_report, terminal_width, wants_color

    overrides = {name: getattr(args, name) for name, _kind, _help in _MACHINE_FLAGS if getattr(args, name) is not None}
    report = check_here(settings, _launch_text(args), overrides=overrides, rule_dirs=args.rules,
                        framework_dirs=args.frameworks)
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_check_report(report, color=wants_color(sys.stdout, no_color=settings.no_color),
                                             width=terminal_width(sys.stdout)))
    return 1 if report.has_error else 0


def _add_machine_options(parser: argparse.ArgumentParser) -> None:
    for name, kind, help_text in _MACHINE_FLAGS:
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=kind,
                            help=help_text + " (default: read here)")


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    """Score the engine on a labelled corpus; exit 1 when below the thresholds given."""
    from app.diagnoser import build_checker
    from app.evaluation import evaluate

    checker = build_checker(settings, extra_framework_dirs=args.frameworks) if args.check else None
    report = evaluate(Path(args.corpus), build_diagnoser(settings, args.signatures, args.frameworks), split=args.split,
                      checker=checker)
    sys.stdout.write(report.render())
    figures = report.figures()
    below = [
        name
        for name, minimum in (("category", args.min_category), ("stage", args.min_stage))
        if minimum is not None and figures[name][1] and figures[name][0] / figures[name][1] < minimum
    ]
    return 1 if below else 0


def _submission_metadata(args: argparse.Namespace) -> SubmissionMetadata:
    from app.client.submit import SubmissionMetadata

    return SubmissionMetadata(
        team=args.team,
        job_id=args.job_id,
        project=args.project,
        cluster=args.cluster,
        user=args.user,
        exit_code=getattr(args, "exit_code", None),
    )


def cmd_submit(args: argparse.Namespace, settings: Settings) -> int:
    """Send a log, the local spool (--flush), or both to the server at TRAINWRECK_URL."""
    from app.client.commands import submit_logs

    if not settings.url:
        raise UsageError("TRAINWRECK_URL is not set: it names the server to send logs to")
    if args.path is None and not args.flush:
        raise UsageError("give a log to send, or --flush to send the logs waiting in the spool")
    path = None if args.path is None else Path(args.path)
    if path is not None and not path.is_file():
        raise UsageError(f"no such file: {args.path}")
    return submit_logs(settings, settings.url, path, _submission_metadata(args), flush=args.flush)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Run a training command, keep its log; on failure diagnose it, print the report and submit it."""
    from app.client.commands import run_and_report

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise UsageError("no command to run: trainwreck run [options] -- CMD ARGS...")
    return run_and_report(settings, command, _submission_metadata(args), check=not args.no_check, strict=args.strict,
                          keep_log=args.keep_log)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Migrate the store to the newest schema, then serve the API, pages and Slack routes."""
    from app.server import default_workers, serve

    overrides = {"host": args.host, "port": args.port}
    workers = args.workers or default_workers()
    serve(settings.replace(**{key: value for key, value in overrides.items() if value is not None}),
          workers=workers)
    return 0


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    """Move the store's schema up or down, or say where it is."""
    from app.admin import describe_revision
    from app.store import migrate

    if args.db_command == "upgrade":
        migrate.upgrade(settings.sqlalchemy_url, args.revision)
    elif args.db_command == "downgrade":
        migrate.downgrade(settings.sqlalchemy_url, args.revision)
    print(describe_revision(settings))
    return 0


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    """Create (printing the secret once), revoke or list API tokens."""
    from app import admin

    if args.token_command == "create":
        if (args.team is None) == (not args.org):
            raise UsageError("give --team T, or --org --read-only for a token that reads every team")
        if args.org and not args.read_only:
            raise UsageError("an organisation-wide token is read-only: add --read-only")
        token = admin.create_token(settings, team=args.team, label=args.label, read_only=args.read_only)
        owner = (f"team {token.team}" if token.team else "every team") + (", read-only" if args.read_only else "")
        sys.stderr.write(f"token {token.id} for {owner} ({token.prefix}…); it is shown only this once:\n")
        print(token.secret)
    elif args.token_command == "revoke":
        print(admin.revoke_token(settings, args.token))
    else:
        print(admin.token_table(settings))
    return 0


def cmd_team(args: argparse.Namespace, settings: Settings) -> int:
    """Team settings: where the team's new diagnoses are posted in Slack."""
    from app.slack.team_webhooks import configure_team_webhook

    if (args.url is None) == (not args.clear):
        raise UsageError("give the webhook URL, or --clear to stop posting")
    print(configure_team_webhook(settings, team=args.team, url=args.url))
    return 0


def cmd_rediagnose(args: argparse.Namespace, settings: Settings) -> int:
    """Run stored logs through the current signatures again."""
    from app.admin import preview_rediagnose, rediagnose

    if args.dry_run:
        preview, changes, version = preview_rediagnose(settings, since=args.since)
        for change in changes:
            for what, before, after in change.changes:
                print(f"diagnosis {change.diagnosis_id} ({change.team}): {what} {before} → {after}")
        print(f"dry run with signature set {version}: {preview.processed} logs read, {preview.changed} would change, "
              f"{preview.failed} failed; nothing was rewritten")
        return 1 if preview.failed else 0

    def show(report: RediagnosisReport) -> None:
        sys.stderr.write(f"\r{report.processed} re-diagnosed, {report.changed} changed, {report.failed} failed")

    report, version = rediagnose(settings, since=args.since, on_batch=show if sys.stderr.isatty() else None)
    if sys.stderr.isatty():
        sys.stderr.write("\r\x1b[K")
    print(
        f"re-diagnosed {report.processed} logs with signature set {version}: "
        f"{report.changed} changed, {report.failed} failed"
    )
    return 1 if report.failed else 0


def cmd_export_corpus(args: argparse.Namespace, settings: Settings) -> int:
    """Write a team's confirmed and corrected diagnoses as a corpus `trainwreck eval` reads."""
    from app.admin import export_team_corpus

    count = export_team_corpus(settings, team=args.team, since=args.since, out=Path(args.out))
    print(f"wrote {count} labelled logs of team {args.team} to {args.out}; score them with: trainwreck eval {args.out}")
    return 0


def _since(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {value!r} (use YYYY-MM-DD or ISO 8601)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _add_job_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--team", help="the team the log belongs to")
    parser.add_argument("--job-id", help="the scheduler's job id (e.g. $SLURM_JOB_ID); also names the log file")
    parser.add_argument("--project", help="the project the job belongs to")
    parser.add_argument("--cluster", help="the cluster the job ran on")
    parser.add_argument("--user", help="who ran the job (default: the current account)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = _Parser(prog="trainwreck", description="What killed the training run, where, and what to change.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    diagnose = commands.add_parser("diagnose", help="diagnose a log offline, no server")
    diagnose.add_argument("path", help="log file (plain, gzip or zstd), or - for stdin")
    diagnose.add_argument("--json", action="store_true", help="print the diagnosis JSON")
    diagnose.add_argument("--exit-code", type=int, help="the job's exit status (137 = SIGKILL, 143 = SIGTERM, ...)")
    diagnose.add_argument("--signatures", type=Path, action="append", default=[], help="an extra signature folder")
    diagnose.add_argument("--frameworks", type=Path, action="append", default=[], help="an extra framework folder")
    diagnose.set_defaults(handler=cmd_diagnose)

    evaluation = commands.add_parser("eval", help="score the engine on a labelled corpus (labels.jsonl)")
    evaluation.add_argument("corpus", help="folder with the logs and labels.jsonl")
    evaluation.add_argument("--signatures", type=Path, action="append", default=[], help="an extra signature folder")
    evaluation.add_argument("--frameworks", type=Path, action="append", default=[], help="an extra framework folder")
    evaluation.add_argument("--split", help="only the cases whose label has this split (e.g. dev, holdout)")
    evaluation.add_argument("--check", action="store_true",
                            help="also check each log's launch command: would `check` have foreseen the crash?")
    evaluation.add_argument("--min-category", type=float, help="fail below this category accuracy")
    evaluation.add_argument("--min-stage", type=float, help="fail below this stage accuracy")
    evaluation.set_defaults(handler=cmd_eval)

    check = commands.add_parser("check", help="check a launch command before it runs: what will crash, what to type")
    check.add_argument("--json", action="store_true", help="print the check JSON")
    check.add_argument("--command", dest="command_line", metavar="LINE", help="the command as one shell line")
    _add_machine_options(check)
    check.add_argument("--rules", type=Path, action="append", default=[], help="an extra rule folder")
    check.add_argument("--frameworks", type=Path, action="append", default=[], help="an extra framework folder")
    check.add_argument("launch", nargs=argparse.REMAINDER,
                       help="-- then the command and its arguments (or the path of a launch script)")
    check.set_defaults(handler=cmd_check)

    run = commands.add_parser("run", help="run a training command; diagnose and submit its log if it fails")
    _add_job_options(run)
    run.add_argument("--strict", action="store_true", help="do not launch when the check finds an error")
    run.add_argument("--no-check", action="store_true", help="launch without checking the command first")
    run.add_argument("--keep-log", action="store_true", help="keep the log of a run that succeeds too (redacted)")
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command and its arguments")
    run.set_defaults(handler=cmd_run)

    submit = commands.add_parser("submit", help="send a log to the server at TRAINWRECK_URL")
    submit.add_argument("path", nargs="?", help="log file (plain, gzip or zstd)")
    _add_job_options(submit)
    submit.add_argument("--exit-code", type=int, help="the job's exit status (137 = SIGKILL, 143 = SIGTERM, ...)")
    submit.add_argument("--flush", action="store_true", help="also send the logs waiting in the local spool")
    submit.set_defaults(handler=cmd_submit)

    serve = commands.add_parser("serve", help="start the service; migrates the store to the newest schema first")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1, or TRAINWRECK_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8000, or TRAINWRECK_PORT)")
    serve.add_argument("--workers", type=int, help="server processes (default: one per CPU core it may use)")
    serve.set_defaults(handler=cmd_serve)

    database = commands.add_parser("db", help="the store's schema: upgrade, downgrade, current")
    database_commands = database.add_subparsers(dest="db_command", required=True, parser_class=_Parser)
    upgrade = database_commands.add_parser("upgrade", help="migrate to the newest schema (or REVISION)")
    upgrade.add_argument("revision", nargs="?", default="head")
    downgrade = database_commands.add_parser("downgrade", help="migrate back one step (or to REVISION, e.g. base)")
    downgrade.add_argument("revision", nargs="?", default="-1")
    database_commands.add_parser("current", help="the store's schema revision")
    database.set_defaults(handler=cmd_db)

    token = commands.add_parser("token", help="API tokens: create, revoke, list")
    token_commands = token.add_subparsers(dest="token_command", required=True, parser_class=_Parser)
    create = token_commands.add_parser("create", help="a new token for a team (printed once)")
    create.add_argument("--team", help="the team whose diagnoses the token reads and writes")
    create.add_argument("--org", action="store_true", help="a token for every team (with --read-only)")
    create.add_argument("--read-only", action="store_true", help="the token reads and never writes")
    create.add_argument("--label", help="a note on who or what uses the token")
    revoke = token_commands.add_parser("revoke", help="stop a token from working")
    revoke.add_argument("token", metavar="ID_OR_PREFIX", help="the token's id or the start of its prefix")
    token_commands.add_parser("list", help="every token (never the secrets)")
    token.set_defaults(handler=cmd_token)

    team = commands.add_parser("team", help="team settings: the Slack webhook for new diagnoses")
    team_commands = team.add_subparsers(dest="team_command", required=True, parser_class=_Parser)
    webhook = team_commands.add_parser("webhook", help="post the team's new diagnoses to a Slack incoming webhook")
    webhook.add_argument("--team", required=True, help="the team")
    webhook.add_argument("url", nargs="?", help="the incoming-webhook URL (https://hooks.slack.com/services/...)")
    webhook.add_argument("--clear", action="store_true", help="stop posting the team's diagnoses to Slack")
    team.set_defaults(handler=cmd_team)

    export = commands.add_parser("export-corpus", help="a team's confirmed and corrected diagnoses as a corpus")
    export.add_argument("--team", required=True, help="the team")
    export.add_argument("--since", type=_since, help="diagnoses received since DATE")
    export.add_argument("out", help="a new folder for the logs and labels.jsonl")
    export.set_defaults(handler=cmd_export_corpus)

    rediagnose = commands.add_parser("rediagnose", help="run stored logs through the current signatures again")
    which = rediagnose.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every stored log")
    which.add_argument("--since", type=_since, help="logs received since DATE (YYYY-MM-DD or ISO 8601, UTC)")
    rediagnose.add_argument("--dry-run", action="store_true",
                            help="list the diagnoses whose category, stage or remedies would change; rewrite none")
    rediagnose.set_defaults(handler=cmd_rediagnose)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: one line on stderr and exit 2 for any error a user can fix."""
    try:
        parser = build_parser()
        if not (sys.argv[1:] if argv is None else argv):  # bare `trainwreck`: what it does, not an error
            parser.print_help()
            return 0
        args = parser.parse_args(argv)
        handler: Handler = args.handler
        return handler(args, Settings.read())
    except TrainwreckError as error:
        sys.stderr.write(f"trainwreck: {error.message}\n")
        return 2
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in SERVER_MODULES:
            raise
        sys.stderr.write(f"trainwreck: `trainwreck {sys.argv[1] if argv is None else argv[0]}` needs the server's "
                         "parts, which this install leaves out: pip install 'trainwreck[server]'\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("trainwreck: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0


def run() -> None:
    """The `trainwreck` command: main(), then the process ends without its last full garbage collection, which
    walked every object the knowledge sets are made of (~10 of a small diagnosis's ~140 ms)."""
    status = main()
    gc.freeze()  # the objects still alive are the process's to the end: freed by the exit, not searched for cycles
    sys.exit(status)


if __name__ == "__main__":
    run()
