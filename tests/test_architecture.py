"""The layers hold: imports run one way (.importlinter, checked by import-linter over every
import, function-level ones included), and services reach tasks only by registered name."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_imports_keep_every_contract_of_the_architecture():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_every_task_name_a_service_sends_is_registered_by_the_worker():
    from backend.services import dispatch
    from worker import app

    names = {value for name, value in vars(dispatch).items() if name.isupper() and isinstance(value, str)}
    assert names >= {"process_webhook_event", "refund_execute", "send_session_notification", "mentor_stats_recompute"}
    assert names <= set(app.tasks), names - set(app.tasks)


def test_services_never_import_a_task_even_inside_a_function():
    # What the layers contract says, spelled out for the one rule most tempting to break.
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "backend" / "services").glob("*.py")
                 if "backend.tasks" in path.read_text() or "from worker" in path.read_text()]
    assert offenders == []
