"""Lays out a relation graph for an inline SVG: one column per distance from the root entity.

Server-side layout keeps the page free of JavaScript graph libraries (no CDN, CSP-friendly);
every node is a link, so the graph is clickable and keyboard-navigable.
"""

from __future__ import annotations

from collections import defaultdict

NODE_W, NODE_H, COL_GAP, ROW_GAP, PAD = 190, 40, 150, 14, 20


def layout(graph: dict) -> dict:
    columns: dict[int, list[dict]] = defaultdict(list)
    for node in sorted(graph["nodes"], key=lambda n: (n["level"], n["kind"], n["name"])):
        columns[node["level"]].append(node)
    positions = {}
    tallest = max((len(nodes) for nodes in columns.values()), default=1)
    height = PAD * 2 + tallest * (NODE_H + ROW_GAP)
    for level, nodes in columns.items():
        # Centre each column against the tallest one, so the root sits beside its neighbours.
        offset = (tallest - len(nodes)) * (NODE_H + ROW_GAP) / 2
        for row, node in enumerate(nodes):
            x = PAD + level * (NODE_W + COL_GAP)
            y = PAD + offset + row * (NODE_H + ROW_GAP)
            positions[node["ref"]] = (x, y)
            node.update(x=x, y=y, w=NODE_W, h=NODE_H, root=node["ref"] == graph["root"],
                        label=node["name"][:26], kind_label=node["kind"])
    edges = []
    for edge in graph["edges"]:
        if edge["source"] not in positions or edge["target"] not in positions:
            continue
        (x1, y1), (x2, y2) = positions[edge["source"]], positions[edge["target"]]
        if x1 == x2 and y1 == y2:
            continue
        if x2 > x1:
            sx, sy, tx, ty = x1 + NODE_W, y1 + NODE_H / 2, x2, y2 + NODE_H / 2
        elif x2 < x1:
            sx, sy, tx, ty = x1, y1 + NODE_H / 2, x2 + NODE_W, y2 + NODE_H / 2
        else:
            sx, sy, tx, ty = x1 + NODE_W - 10, y1 + (NODE_H if y2 > y1 else 0), x2 + NODE_W - 10, y2 + (0 if y2 > y1 else NODE_H)
        mx = (sx + tx) / 2
        # The label sits just before the arrow head, where edges no longer overlap.
        lx = tx - 6 if tx > sx else tx + 6
        edges.append({**edge, "path": f"M{sx:.0f},{sy:.0f} C{mx:.0f},{sy:.0f} {mx:.0f},{ty:.0f} {tx:.0f},{ty:.0f}",
                      "lx": lx, "ly": ty - 5, "anchor": "end" if tx > sx else "start"})
    width = PAD * 2 + (max(columns) + 1 if columns else 1) * (NODE_W + COL_GAP)
    # Draw each pair's edge label once (a relation and its inverse overlap).
    seen, unique = set(), []
    for e in edges:
        key = tuple(sorted((e["source"], e["target"])))
        if key in seen:
            continue
        seen.add(key)
        unique.append(e)
    return {"nodes": graph["nodes"], "edges": unique, "width": width, "height": max(height, 120)}
