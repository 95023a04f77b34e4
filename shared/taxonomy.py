"""The problem taxonomy and default responsibility list (责任清单), loaded from YAML."""

from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class Category:
    code: str
    name: str
    department_code: str
    priority: str


@dataclass(frozen=True)
class Taxonomy:
    version: str
    departments: dict[str, str]  # code -> Chinese name
    categories: dict[str, Category]

    def department_name(self, code: str) -> str:
        return self.departments[code]


def load_taxonomy(path: Path) -> Taxonomy:
    """Read and check the taxonomy file: every category names a known department and priority."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    departments = {code: d["name"] for code, d in data["departments"].items()}
    categories = {}
    for c in data["categories"]:
        if c["dept"] not in departments:
            raise ValueError(f"category {c['code']} names unknown department {c['dept']}")
        if c["priority"] not in ("urgent", "normal"):
            raise ValueError(f"category {c['code']} has unknown priority {c['priority']}")
        categories[c["code"]] = Category(c["code"], c["name"], c["dept"], c["priority"])
    return Taxonomy(version=str(data["version"]), departments=departments, categories=categories)
