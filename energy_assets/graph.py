"""The asset graph as a Mermaid flowchart, generated from the definitions (README's picture)."""

from __future__ import annotations

import re

GROUP_TITLES = {
    "neso": "NESO Carbon Intensity (UK settlement days)",
    "neso_regional": "NESO regional forecast (UK settlement days)",
    "neso_forecast": "NESO forecast archive, skill and carbon-aware windows (UK days of issue)",
    "smart_meter": "Smart meter (UK settlement days)",
    "electricity_maps": "Electricity Maps (UTC day x zone)",
    "carbon": "Carbon footprint (UK settlement days)",
    "serving": "SQL serving",
}


def _node_id(key) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", "__".join(key.path))


def mermaid(defs) -> str:
    graph = defs.resolve_asset_graph()
    keys = sorted(graph.materializable_asset_keys, key=lambda k: k.to_user_string())
    by_group: dict[str, list] = {}
    for key in keys:
        by_group.setdefault(graph.get(key).group_name or "default", []).append(key)
    lines = ["flowchart LR"]
    for group in sorted(by_group, key=lambda g: (list(GROUP_TITLES).index(g) if g in GROUP_TITLES else 99, g)):
        lines.append(f'  subgraph {group}["{GROUP_TITLES.get(group, group)}"]')
        for key in by_group[group]:
            lines.append(f'    {_node_id(key)}["{key.to_user_string()}"]')
        lines.append("  end")
    for key in keys:
        if key.path[0] == "serving":
            continue  # the serving database reads every table: edges from all would hide the rest
        for parent in sorted(graph.get(key).parent_keys, key=lambda k: k.to_user_string()):
            if parent in graph.materializable_asset_keys:
                lines.append(f"  {_node_id(parent)} --> {_node_id(key)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from energy_assets.definitions import defs

    print(mermaid(defs), end="")
    return 0
