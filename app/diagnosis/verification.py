"""The minimal verification command: the launch command cut down to a run of minutes (a few samples, batch 1,
short sequences, a few steps, a scratch output folder) that keeps the settings under suspicion as they are.

If it passes, the failure needs the run's full scale; if it fails, the cause is in what was kept, the model
or the environment, and it fails in minutes instead of hours.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from app.diagnosis.command import edit_command, read_command
from app.diagnosis.frameworks import FrameworkSet
from app.diagnosis.settings import SETTING_NAMES, parameter_key


def verification_command(text: str, *, frameworks: FrameworkSet, keep: Collection[str] = ()) -> str | None:
    """The cut-down command, or None when there is nothing to cut. `keep` names settings (common names, see
    SETTING_NAMES) left untouched."""
    command = read_command(text)
    framework = frameworks.for_command(command.text)
    recipe = frameworks.verification(framework)
    changes: dict[str, Any] = {}
    for name, value in [*recipe.change.items(), *recipe.add.items()]:
        if name in keep or name in changes:
            continue
        found = command.find(frameworks.setting_spellings(framework, name))
        if found is not None:
            if found[1] != value:
                changes[found[0]] = value
        elif name in recipe.add:
            spellings = frameworks.setting_spellings(framework, name)
            changes[spellings[0] if spellings else name] = value
    if recipe.dataset_sample and "dataset" not in keep:
        found = command.find(frameworks.setting_spellings(framework, "dataset"))
        if found is not None:
            datasets = found[1] if isinstance(found[1], list) else [found[1]]
            sampled = [item if "#" in str(item) else recipe.dataset_sample.format(dataset=item) for item in datasets]
            if sampled != datasets:
                changes[found[0]] = sampled if len(sampled) > 1 else sampled[0]
    if not changes:
        return None
    return edit_command(command.text, changes)


def setting_names_of(parameters: Collection[str], *, frameworks: FrameworkSet, text: str) -> set[str]:
    """The common names of settings spelled as a run spells them (`per_device_train_batch_size` →
    `per_device_batch`)."""
    framework = frameworks.for_command(text)
    keys = {parameter_key(name).rsplit(".", 1)[-1] for name in parameters}
    return {
        name for name in SETTING_NAMES
        if keys & {parameter_key(spelling) for spelling in frameworks.setting_spellings(framework, name)}
    }
