"""An accessibility pass in the browser tests: the vendored axe-core (shokti/testing/vendor/axe-core, no
network) run on the page, its serious and critical violations returned as readable lines."""

from __future__ import annotations

from pathlib import Path

AXE_SCRIPT = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
BLOCKING_IMPACTS = ("serious", "critical")


def axe_violations(page, *, include: str | None = None) -> list[str]:
    """The serious and critical axe violations of `page` (within `include`, a CSS selector, if given)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_SCRIPT))
    results = page.evaluate(
        """async (include) => {
            const context = include ? { include: [include] } : document;
            return await window.axe.run(context, { resultTypes: ['violations'] });
        }""",
        include,
    )
    return [
        f"{violation['impact']}: {violation['id']} ({violation['help']}) at "
        + ", ".join(node["target"][0] if isinstance(node["target"][0], str) else str(node["target"])
                    for node in violation["nodes"][:3])
        for violation in results["violations"]
        if violation["impact"] in BLOCKING_IMPACTS
    ]
