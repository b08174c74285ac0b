"""The sample world behind `make demo`: seeded, deterministic feeds for every connector.

`python -m connectors.samples.world [--out DIR] [--seed 2026]` reads the city reference list
(`ref_cities.csv` in UF_REFERENCE_DIR, 44 cities in 17 countries) and writes, from one set of
city populations and one set of partners, so that the sources agree with each other (by default
into UF_SAMPLE_DATA_DIR, the committed `sample_data/`):

* `sdmx/` - the national statistics offices' city feeds (`sdmx_feeds`);
* `worldbank/`, `unsdg/` - national urban slum shares (and urban electricity access), the
  population-weighted means of the SDMX city values (`national`), as World Bank API v2 and UN
  SDG API pages (`worldbank`, `unsdg`);
* `iati/<partner>.xml` - each partner's programmes, one per city of its countries (`iati`, the
  partners in `partners`);
* `hxl/<partner>.csv` - the displacement partner's IOM-DTM-style counts per city and round (`hxl`);
* `utilities/kpi_<yyyy_mm>.csv` - monthly KPIs of each city's water and electricity utility
  (`utilities`);
* `partner_results/<partner>.csv` - partner.result.v1 uploads with indicators the IATI files do
  not carry (`partner_results`);
* `hazards/` - GDACS-style hazard event feeds (`hazards`).

Each job is a module of `connectors.samples`; this one only composes them. The figures are
synthetic but plausible; the same seed gives byte-identical files.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from connectors.reference import City, load_cities
from connectors.samples.hazards import render_hazards
from connectors.samples.hxl import render_hxl
from connectors.samples.iati import plan_activities, render_iati
from connectors.samples.national import national_series
from connectors.samples.partner_results import render_partner_results
from connectors.samples.sdmx_feeds import write_feeds
from connectors.samples.unsdg import render_unsdg
from connectors.samples.utilities import render_kpis
from connectors.samples.worldbank import render_worldbank
from connectors.settings import Settings

DEFAULT_SEED = 2026


def render_world(cities: Sequence[City], seed: int = DEFAULT_SEED) -> dict[str, str]:
    """Relative path -> content of every generated file except the SDMX feeds."""
    series = national_series(cities, seed)
    activities = plan_activities(cities, seed)
    return {
        **render_worldbank(cities, series),
        **render_unsdg(cities, series),
        **render_iati(activities),
        **render_partner_results(activities, seed),
        **render_hxl(cities, seed),
        **render_kpis(cities, seed),
        **render_hazards(cities, seed),
    }


def write_world(
    out_dir: Path, seed: int = DEFAULT_SEED, reference_dir: Path | None = None
) -> dict[Path, int]:
    """Write the SDMX feeds and every other sample file under `out_dir`: path -> bytes.

    The cities come from `reference_dir` (default: UF_REFERENCE_DIR)."""
    cities = load_cities(reference_dir)
    written = {path: path.stat().st_size for path in write_feeds(out_dir / "sdmx", cities)}
    for name, text in render_world(cities, seed).items():
        path = out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode("utf-8")
        path.write_bytes(data)
        written[path] = len(data)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    settings = Settings.from_env()
    parser.add_argument(
        "--out", type=Path, default=settings.sample_data_dir, help="output directory"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    parser.add_argument(
        "--reference-dir",
        type=Path,
        default=settings.reference_dir,
        help="folder of the reference seeds (ref_cities.csv ...)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    written = write_world(args.out, args.seed, args.reference_dir)
    folders = sorted({path.parent.name for path in written})
    print(
        f"wrote {len(written)} sample files ({sum(written.values()) / 1024:.0f} KiB; "
        f"{', '.join(folders)}) to {args.out} with seed {args.seed} "
        f"in {time.perf_counter() - started:.2f}s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
