"""The logg-tui App: modes for the main screens, pushed screens for detail / compare /
launch / help, global keys, the command palette, and refresh (ingest + reload)."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import App
from textual.binding import Binding

from logg_tui.commands import LoggCommands
from logg_tui.jobs import JobManager
from logg_tui.screens.help import HelpScreen
from logg_tui.screens.runs import RunsScreen


def _lazy(module: str, name: str):
    """A screen factory importing its module on first use: only the Runs screen (and
    not plotext, numpy or pandas) is on the start-up path."""
    def make():
        import importlib

        return getattr(importlib.import_module(f"logg_tui.screens.{module}"), name)()
    return make


INGEST_TIMEOUT_S = 5.0
APP_CSS = """
#filters { height: 3; }
#filters Input { width: 1fr; }
.side { width: 45%; min-width: 30; }
.side-narrow { width: 28; }  /* 'table metric_history' on one line */
.query { height: 6; }
#form { padding: 1 2 0 2; height: auto; }
#form .row { height: 1; margin-bottom: 1; }
#form .lbl { width: 11; }
#form Input, #form Select { width: 1fr; }
#form Input { border: none; height: 1; padding: 0 1; background: $boost; }
#form Input:focus { background: $primary 30%; }
#form SelectCurrent { border: none; height: 1; padding: 0 1; background: $boost; }
#form Select:focus > SelectCurrent { background: $primary 30%; }
#command { margin: 0 0 1 0; padding: 0 1; border: round $primary; height: auto; }
#jobs { height: 8; }
#jobinfo { height: auto; padding: 0 1; }
#bar { padding: 0 1; }
#joblog { height: 1fr; border: round $panel; }
.section { margin: 1 0 0 1; }
.empty { color: $text-muted; padding: 0 2; }
.moe { height: auto; max-height: 14; }
ConfirmScreen, HelpScreen { align: center middle; }
#dialog { width: 80%; max-width: 100; height: auto; max-height: 90%; border: thick $primary;
          background: $surface; padding: 1 2; }
#dialog Horizontal { height: 3; margin-top: 1; }
#dialog Button { margin-right: 2; }
"""
JOB_POLL_S = 0.5


class LoggApp(App):
    TITLE = "logg"
    CSS = APP_CSS  # inline, so an installed wheel needs no package data
    COMMANDS = App.COMMANDS | {LoggCommands}
    MODES = {"runs": RunsScreen, "scaling": _lazy("scaling", "ScalingScreen"),
             "snr": _lazy("r2_snr", "R2SnrScreen"), "moe": _lazy("moe", "MoeScreen"),
             "jobs": _lazy("jobs", "JobsScreen"), "sql": _lazy("sql", "SqlScreen"),
             "calibration": _lazy("calibration", "CalibrationScreen")}
    BINDINGS = [
        Binding("1", "switch_mode('runs')", "Runs"),
        Binding("2", "switch_mode('scaling')", "Scaling"),
        Binding("3", "switch_mode('snr')", "R²/SNR"),
        Binding("4", "switch_mode('moe')", "MoE"),
        Binding("5", "switch_mode('jobs')", "Jobs"),
        Binding("6", "switch_mode('sql')", "SQL"),
        Binding("7", "switch_mode('calibration')", "Calib", show=False),
        Binding("l", "launch", "Launch", show=False),
        Binding("r", "refresh", "Refresh"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("f1", "help", "Help", show=False, priority=True),  # works inside inputs
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, workspace: Path, *, readonly: bool = False,
                 ingest_on_start: bool = True) -> None:
        super().__init__()
        self.workspace = Path(workspace)
        self.readonly = readonly
        self.ingest_on_start = ingest_on_start and not readonly
        self.selected: list[str] = []
        self.jobs = JobManager(self.workspace)
        self.sub_title = str(self.workspace)

    def on_mount(self) -> None:
        self.switch_mode("runs")
        if self.ingest_on_start:
            self._ingest()
        self.set_interval(JOB_POLL_S, self._poll_jobs)

    # ------------------------------------------------------------------ jobs
    def _poll_jobs(self) -> None:
        """While any job is active: follow it; a job that ends triggers a refresh so
        its run appears in Runs without a restart."""
        if any(not j.reported for j in self.jobs.jobs):
            self._poll_jobs_worker()

    @work(thread=True, exclusive=True, group="jobs-poll")
    def _poll_jobs_worker(self) -> None:
        ended = self.jobs.poll()
        self.call_from_thread(self._jobs_changed, bool(ended))

    def _jobs_changed(self, ended: bool) -> None:
        if type(self.screen).__name__ == "JobsScreen":
            self.screen.load()
        if ended:
            self.action_refresh()

    # ------------------------------------------------------------------ navigation
    def open_run(self, run_id: str) -> None:
        from logg_tui.screens.run_detail import RunDetailScreen

        self.push_screen(RunDetailScreen(run_id))

    def open_compare(self, run_ids: list[str]) -> None:
        from logg_tui.screens.compare import CompareScreen

        self.push_screen(CompareScreen(run_ids))

    def action_launch(self) -> None:
        from logg_tui.screens.launch import LaunchScreen

        if not isinstance(self.screen, LaunchScreen):
            self.push_screen(LaunchScreen())

    def action_help(self) -> None:
        screen = self.screen
        if isinstance(screen, HelpScreen):  # F1 again closes it
            self.pop_screen()
            return
        keys = [(b.key_display or b.key, b.description) for b in
                getattr(screen, "BINDINGS", []) if isinstance(b, Binding) and b.description]
        self.push_screen(HelpScreen(getattr(screen, "HELP", "") or "", keys))

    # ------------------------------------------------------------------ refresh
    def action_refresh(self) -> None:
        """Ingest finished runs (unless read-only), then reload the current screen."""
        if self.readonly:
            self._reload()
        else:
            self._ingest()

    @work(thread=True, exclusive=True, group="ingest")
    def _ingest(self) -> None:
        from engine.errors import StoreError
        from engine.paths import runs_dir
        from engine.store.ingest import ingest_all

        if not runs_dir(self.workspace).is_dir():  # nothing to ingest: never create a store
            self.call_from_thread(self._reload)
            return
        try:
            report = ingest_all(self.workspace, timeout_s=INGEST_TIMEOUT_S)
        except StoreError as exc:
            self.call_from_thread(self._status, f"ingest skipped: {exc.message}")
        else:
            if report.errors:
                self.call_from_thread(self._status, f"ingest: {len(report.errors)} folders "
                                      f"unreadable, e.g. {report.errors[0][0]}")
        self.call_from_thread(self._reload)

    def _reload(self) -> None:
        load = getattr(self.screen, "load", None)
        if load is not None:
            load()

    def _status(self, text: str) -> None:
        say = getattr(self.screen, "say", None)
        if say is not None:
            say(text, error=True)
