"""Launch: a form (model, preset, size, noise level, overrides) that shows the exact
`logg-engine` command before anything starts."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Select, Static

from logg_tui.jobs import LaunchRequest, parse_overrides, shell_quote
from logg_tui.screens.base import LoggScreen


def model_choices() -> list[str]:
    """Models from the engine's registry (names only: no adapter is imported)."""
    try:
        from engine.runs.registry import model_names

        return model_names()
    except Exception:  # registry not importable: the three research models
        return ["ridge", "lgbm", "vit"]


class LaunchScreen(LoggScreen):
    HELP = """Launch a training run. Fill the form (model, preset, size, noise level, dataset,
overrides); the exact command appears below it and
is what runs (a `logg-engine run … --detach` subprocess in its own process group).
ctrl+s (or the Start button) starts it and opens Jobs; escape goes back. Overrides are
key=value pairs separated by spaces or commas (each becomes --set key=value)."""

    BINDINGS = [Binding("ctrl+s", "start", "Start"), Binding("escape", "app.pop_screen",
                                                             "Back")]

    def body(self) -> ComposeResult:
        models = model_choices()
        with Vertical(id="form"):
            with Horizontal(classes="row"):
                yield Label("model", classes="lbl")
                yield Select([(m, m) for m in models], value=models[0], allow_blank=False,
                             id="model")
            for name, placeholder, value in (("preset", "default preset", ""),
                                             ("size", "e.g. 1k, 50k, 1M", "10k"),
                                             ("noise", "noise level (default 1.0)", ""),
                                             ("dataset", "dataset (default: default)", ""),
                                             ("overrides", "e.g. alpha=5000", "")):
                with Horizontal(classes="row"):
                    yield Label(name, classes="lbl")
                    yield Input(value=value, placeholder=placeholder, id=name)
            yield Static(id="command")
            yield Button("Start (ctrl+s)", variant="primary", id="start")

    def on_mount(self) -> None:
        super().on_mount()
        self._preview()

    def request(self) -> LaunchRequest:
        v = {k: self.query_one(f"#{k}", Input).value.strip()
             for k in ("preset", "size", "noise", "dataset", "overrides")}
        return LaunchRequest(model=str(self.query_one("#model", Select).value),
                             size=v["size"], preset=v["preset"], noise_level=v["noise"],
                             dataset=v["dataset"], overrides=parse_overrides(v["overrides"]))

    @on(Input.Changed)
    @on(Select.Changed)
    def _preview(self) -> None:
        req = self.request()
        self.query_one("#command", Static).update(
            f"[b]command[/b]\n$ {shell_quote(req.argv(self.ws))}", )
        try:
            req.validate()
            self.say("ready: ctrl+s starts it")
        except ValueError as exc:
            self.say(str(exc), error=True)

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        req = self.request()
        try:
            job = self.app.jobs.launch(req)
        except (ValueError, OSError) as exc:
            self.say(f"not started: {exc}", error=True)
            return
        self.app.notify(f"job {job.job_id} started: {job.model} {job.size}")
        self.app.pop_screen()
        self.app.switch_mode("jobs")
