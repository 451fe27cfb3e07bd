"""The paper's published JOWA results as data (docs/official_jowa.md §8.4, §8.6, §8.7; official `results/data.json`,
`eval/JOWA_*_raw_scores.json`).

* `PAPER_MEAN_SCORES`: per-game mean raw returns (16 episodes each), rounded to 0.1 as published, for
  JOWA with and without planning and the baselines. Keys are the official `data.json` names.
* `PAPER_SUMMARY`: the summary rows of the §8.6 table as fractions (84.7 % -> 0.847), rounded to 0.1
  percentage point as printed; the code's formulas recompute them from `PAPER_MEAN_SCORES`.
* `PAPER_RAW_RETURNS`: the 16 raw returns per game behind the "with planning" columns.
* `PAPER_PLANNING_SETTINGS`: the beam-search setting (context, beam width K, horizon H) behind each, as
  `configs/eval/jowa_*.yaml` hold them.
"""

from __future__ import annotations

from dataclasses import dataclass

from jowa.evaluation.settings_file import paper_settings


@dataclass(frozen=True)
class PaperSummary:
    iqm_hns: float
    iqm_dns: float
    median_hns: float
    mean_hns: float
    num_above_human: int


@dataclass(frozen=True)
class PlanningSetting:
    context: int  # official buffer_size: steps of real history kept in the context
    beam_width: int  # K
    horizon: int  # H


PAPER_MEAN_SCORES: dict[str, dict[str, float]] = {
    "JOWA_150M_with_planning": {
        "Assault": 1458.6, "Atlantis": 2841262.5, "BeamRider": 2927.0,
        "Berzerk": 496.9, "Carnival": 4910.0, "Centipede": 7117.0,
        "ChopperCommand": 3925.0, "DemonAttack": 9296.6, "NameThisGame": 9380.0,
        "Phoenix": 5230.0, "Seaquest": 1413.8, "SpaceInvaders": 1036.9,
        "StarGunner": 53237.5, "TimePilot": 3975.0, "Zaxxon": 331.2,
    },
    "JOWA_70M_with_planning": {
        "Assault": 1594.6, "Atlantis": 1975912.5, "BeamRider": 2536.8,
        "Berzerk": 486.9, "Carnival": 4378.8, "Centipede": 5873.5,
        "ChopperCommand": 2306.2, "DemonAttack": 7399.4, "NameThisGame": 8228.1,
        "Phoenix": 4456.2, "Seaquest": 1425.0, "SpaceInvaders": 1063.4,
        "StarGunner": 29862.5, "TimePilot": 4287.5, "Zaxxon": 0.0,
    },
    "JOWA_40M_with_planning": {
        "Assault": 1397.9, "Atlantis": 52987.5, "BeamRider": 965.0,
        "Berzerk": 455.6, "Carnival": 5428.8, "Centipede": 4482.8,
        "ChopperCommand": 3700.0, "DemonAttack": 3166.2, "NameThisGame": 11364.4,
        "Phoenix": 4457.5, "Seaquest": 884.4, "SpaceInvaders": 805.6,
        "StarGunner": 6825.0, "TimePilot": 4262.5, "Zaxxon": 0.0,
    },
    "JOWA_150M_without_planning": {
        "Assault": 2102.2, "Atlantis": 2217150.0, "BeamRider": 864.5,
        "Berzerk": 396.9, "Carnival": 5560.0, "Centipede": 8746.0,
        "ChopperCommand": 806.2, "DemonAttack": 7390.0, "NameThisGame": 5691.9,
        "Phoenix": 4958.8, "Seaquest": 267.5, "SpaceInvaders": 732.2,
        "StarGunner": 7443.8, "TimePilot": 662.5, "Zaxxon": 12.5,
    },
    "JOWA_70M_without_planning": {
        "Assault": 2302.6, "Atlantis": 3657006.25, "BeamRider": 735.0,
        "Berzerk": 610.0, "Carnival": 5335.0, "Centipede": 8541.0,
        "ChopperCommand": 937.5, "DemonAttack": 7098.4, "NameThisGame": 6161.3,
        "Phoenix": 4730.0, "Seaquest": 180.0, "SpaceInvaders": 513.8,
        "StarGunner": 2975.0, "TimePilot": 1025.0, "Zaxxon": 0.0,
    },
    "JOWA_40M_without_planning": {
        "Assault": 1578.3, "Atlantis": 6400.0, "BeamRider": 822.0,
        "Berzerk": 506.3, "Carnival": 4960.0, "Centipede": 6852.9,
        "ChopperCommand": 1575.0, "DemonAttack": 4396.9, "NameThisGame": 5298.1,
        "Phoenix": 3337.5, "Seaquest": 160.0, "SpaceInvaders": 685.0,
        "StarGunner": 4343.8, "TimePilot": 600.0, "Zaxxon": 18.8,
    },
    "MTBC_120M": {
        "Assault": 1203.5, "Atlantis": 37812.5, "BeamRider": 786.0,
        "Berzerk": 655.0, "Carnival": 5560.0, "Centipede": 4046.6,
        "ChopperCommand": 256.3, "DemonAttack": 2611.3, "NameThisGame": 6045.0,
        "Phoenix": 1446.9, "Seaquest": 120.0, "SpaceInvaders": 605.0,
        "StarGunner": 1493.8, "TimePilot": 762.5, "Zaxxon": 0.0,
    },
    "MTBC_65M": {
        "Assault": 1742.4, "Atlantis": 1189675.0, "BeamRider": 703.3,
        "Berzerk": 550.0, "Carnival": 5560.0, "Centipede": 5745.5,
        "ChopperCommand": 518.8, "DemonAttack": 3701.6, "NameThisGame": 4392.5,
        "Phoenix": 237.5, "Seaquest": 165.0, "SpaceInvaders": 613.8,
        "StarGunner": 1425.0, "TimePilot": 575.0, "Zaxxon": 275.0,
    },
    "MTBC_34M": {
        "Assault": 1555.3, "Atlantis": 48118.8, "BeamRider": 603.0,
        "Berzerk": 528.1, "Carnival": 5560.0, "Centipede": 2949.9,
        "ChopperCommand": 600.0, "DemonAttack": 6619.7, "NameThisGame": 5133.1,
        "Phoenix": 2711.3, "Seaquest": 240.0, "SpaceInvaders": 356.3,
        "StarGunner": 3175.0, "TimePilot": 431.3, "Zaxxon": 75.0,
    },
    "Scaled_QL_80M": {
        "Assault": 2292.0, "Atlantis": 49100.0, "BeamRider": 7023.5,
        "Berzerk": 312.5, "Carnival": 1940.0, "Centipede": 3650.3,
        "ChopperCommand": 853.8, "DemonAttack": 7936.5, "NameThisGame": 6461.7,
        "Phoenix": 4961.7, "Seaquest": 650.0, "SpaceInvaders": 714.4,
        "StarGunner": 4728.6, "TimePilot": 4072.7, "Zaxxon": 0.0,
    },
    "MGDT_200M": {
        "Assault": 1741.5, "Atlantis": 2565750.0, "BeamRider": 6011.3,
        "Berzerk": 444.5, "Carnival": 2610.0, "Centipede": 4604.0,
        "ChopperCommand": 3300.8, "DemonAttack": 6549.4, "NameThisGame": 6610.5,
        "Phoenix": 5120.5, "Seaquest": 2720.0, "SpaceInvaders": 742.5,
        "StarGunner": 8625.5, "TimePilot": 3866.7, "Zaxxon": 462.5,
    },
    "MGDT_40M": {
        "Assault": 1227.2, "Atlantis": 26657.14286, "BeamRider": 972.0,
        "Berzerk": 145.8, "Carnival": 3460.0, "Centipede": 3024.0,
        "ChopperCommand": 2400.0, "DemonAttack": 1943.3, "NameThisGame": 4691.4,
        "Phoenix": 3522.8, "Seaquest": 700.0, "SpaceInvaders": 720.0,
        "StarGunner": 3100.0, "TimePilot": 4000.0, "Zaxxon": 125.0,
    },
    "EDT_200M": {
        "Assault": 1915.5, "Atlantis": 2108166.7, "BeamRider": 4149.8,
        "Berzerk": 350.0, "Carnival": 3678.75, "Centipede": 3389.9,
        "ChopperCommand": 3443.8, "DemonAttack": 3455.7, "NameThisGame": 7060.0,
        "Phoenix": 5320.0, "Seaquest": 3160.4, "SpaceInvaders": 513.8,
        "StarGunner": 9550.0, "TimePilot": 2812.5, "Zaxxon": 325.5,
    },
}

PAPER_SUMMARY: dict[str, PaperSummary] = {
    "JOWA_150M_with_planning": PaperSummary(
        iqm_hns=0.847, iqm_dns=1.195, median_hns=0.585, mean_hns=12.878,
        num_above_human=6,
    ),
    "JOWA_70M_with_planning": PaperSummary(
        iqm_hns=0.802, iqm_dns=0.952, median_hns=0.57, mean_hns=9.05,
        num_above_human=6,
    ),
    "JOWA_40M_with_planning": PaperSummary(
        iqm_hns=0.664, iqm_dns=0.772, median_hns=0.439, mean_hns=0.829,
        num_above_human=5,
    ),
    "JOWA_150M_without_planning": PaperSummary(
        iqm_hns=0.524, iqm_dns=0.613, median_hns=0.591, mean_hns=9.787,
        num_above_human=4,
    ),
    "JOWA_70M_without_planning": PaperSummary(
        iqm_hns=0.461, iqm_dns=0.637, median_hns=0.241, mean_hns=15.713,
        num_above_human=4,
    ),
    "JOWA_40M_without_planning": PaperSummary(
        iqm_hns=0.271, iqm_dns=0.433, median_hns=0.353, mean_hns=0.438,
        num_above_human=3,
    ),
    "MTBC_120M": PaperSummary(
        iqm_hns=0.326, iqm_dns=0.278, median_hns=0.197, mean_hns=0.41,
        num_above_human=4,
    ),
    "MTBC_65M": PaperSummary(
        iqm_hns=0.323, iqm_dns=0.423, median_hns=0.17, mean_hns=5.24,
        num_above_human=4,
    ),
    "MTBC_34M": PaperSummary(
        iqm_hns=0.336, iqm_dns=0.387, median_hns=0.161, mean_hns=0.628,
        num_above_human=4,
    ),
    "Scaled_QL_80M": PaperSummary(
        iqm_hns=0.39, iqm_dns=0.66, median_hns=0.4, mean_hns=0.935,
        num_above_human=3,
    ),
    "MGDT_200M": PaperSummary(
        iqm_hns=0.49, iqm_dns=1.058, median_hns=0.391, mean_hns=11.259,
        num_above_human=3,
    ),
    "MGDT_40M": PaperSummary(
        iqm_hns=0.329, iqm_dns=0.422, median_hns=0.26, mean_hns=0.453,
        num_above_human=1,
    ),
    "EDT_200M": PaperSummary(
        iqm_hns=0.501, iqm_dns=0.836, median_hns=0.4, mean_hns=9.25,
        num_above_human=3,
    ),
}

# Which PAPER_MEAN_SCORES column each set of raw returns reproduces.
RAW_RETURNS_COLUMN: dict[str, str] = {
    "JOWA_150M": "JOWA_150M_with_planning",
    "JOWA_70M": "JOWA_70M_with_planning",
    "JOWA_40M": "JOWA_40M_with_planning",
}

PAPER_RAW_RETURNS: dict[str, dict[str, tuple[int, ...]]] = {
    "JOWA_150M": {
        "Assault": (
            807, 807, 1436, 1154, 1698, 315, 1647, 1899,
            1974, 2414, 1373, 1668, 1908, 1594, 1270, 1373,
        ),
        "Atlantis": (
            2849900, 2538400, 2849900, 2849900, 2849900, 2849900, 2849900, 2849900,
            2880900, 2849900, 2880900, 2849900, 2930200, 2880900, 2849900, 2849900,
        ),
        "BeamRider": (
            660, 1332, 8428, 1332, 1332, 1332, 4500, 2916,
            8428, 1332, 1332, 1332, 8428, 1332, 1484, 1332,
        ),
        "Berzerk": (600, 600, 250, 400, 600, 600, 600, 400, 400, 600, 550, 550, 550, 400, 600, 250),
        "Carnival": (
            4910, 4910, 4910, 4910, 4910, 4910, 4910, 4910,
            4910, 4910, 4910, 3710, 4910, 5560, 5460, 4910,
        ),
        "Centipede": (
            7110, 8185, 7110, 7110, 7110, 7110, 7110, 7110,
            7110, 7110, 7110, 8185, 8185, 7110, 7110, 3997,
        ),
        "ChopperCommand": (
            4100, 4100, 4100, 4100, 1300, 4100, 4100, 4100,
            4100, 4100, 4100, 4100, 4100, 4100, 4100, 4100,
        ),
        "DemonAttack": (
            11445, 11445, 11445, 11445, 1780, 11445, 11445, 11445,
            3380, 13150, 11445, 11445, 3380, 1160, 11445, 11445,
        ),
        "NameThisGame": (
            9040, 9040, 9040, 9040, 9040, 10950, 9040, 9040,
            9040, 9040, 9040, 9040, 9040, 12570, 9040, 9040,
        ),
        "Phoenix": (5230,) * 16,
        "Seaquest": (
            1080, 1160, 1160, 1160, 1080, 1160, 4250, 2510,
            1160, 1080, 680, 1160, 1160, 1160, 1160, 1500,
        ),
        "SpaceInvaders": (
            1175, 895, 1175, 1175, 1175, 1175, 895, 1265,
            1175, 1175, 895, 345, 1175, 545, 1175, 1175,
        ),
        "StarGunner": (
            57200, 57200, 57200, 57200, 57200, 22000, 57200, 57200,
            57200, 57200, 57200, 57200, 57200, 57200, 29000, 57200,
        ),
        "TimePilot": (
            4200, 4200, 800, 4200, 4200, 4200, 4200, 4200,
            4200, 4200, 4200, 4200, 4200, 4000, 4200, 4200,
        ),
        "Zaxxon": (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5300, 0, 0, 0, 0, 0),
    },
    "JOWA_70M": {
        "Assault": (
            2340, 1690, 1984, 1773, 819, 2204, 1226, 1491,
            1226, 1752, 2004, 1752, 1290, 1594, 1121, 1248,
        ),
        "Atlantis": (
            110700, 2808300, 110700, 2808300, 60500, 2808300, 2808300, 2808300,
            2808300, 2943400, 2808300, 2808300, 110700, 60500, 2808300, 2943400,
        ),
        "BeamRider": (572, 572, 4650, 4650, 4650, 176, 4650, 4650, 572, 572, 176, 4650, 4650, 176, 4650, 572),
        "Berzerk": (490, 460, 590, 490, 490, 490, 400, 490, 490, 490, 490, 490, 490, 460, 490, 490),
        "Carnival": (
            4790, 60, 4790, 4790, 4790, 4790, 4790, 4790,
            4790, 4790, 4790, 4790, 4790, 3540, 4790, 4190,
        ),
        "Centipede": (
            6021, 6021, 6021, 6021, 6021, 6021, 6021, 8108,
            6021, 1574, 6021, 6021, 6021, 6021, 6021, 6021,
        ),
        "ChopperCommand": (
            2500, 2500, 2500, 2500, 2500, 2500, 500, 2500,
            2500, 2500, 2500, 2500, 2500, 2500, 2500, 1400,
        ),
        "DemonAttack": (
            8090, 110, 5020, 8090, 8090, 8090, 8090, 8090,
            8090, 8090, 8090, 8090, 8090, 8090, 8090, 8090,
        ),
        "NameThisGame": (
            7120, 7120, 7120, 7120, 7120, 7120, 14240, 7120,
            11570, 13280, 7120, 7120, 7120, 7120, 7120, 7120,
        ),
        "Phoenix": (
            5360, 5360, 5360, 5360, 540, 5360, 5360, 5360,
            5360, 5360, 540, 5360, 5360, 540, 5360, 5360,
        ),
        "Seaquest": (
            1760, 1760, 1760, 980, 980, 1760, 1760, 980,
            980, 1760, 1760, 600, 680, 1760, 1760, 1760,
        ),
        "SpaceInvaders": (
            1095, 470, 1095, 1095, 1095, 1095, 1095, 1215,
            1095, 1095, 1095, 1095, 1095, 1095, 1095, 1095,
        ),
        "StarGunner": (
            38300, 2200, 13400, 38300, 38300, 38300, 38300, 38300,
            38300, 13400, 14300, 38300, 38300, 13200, 38300, 38300,
        ),
        "TimePilot": (
            4300, 4500, 4500, 4500, 4500, 4500, 1300, 4500,
            4500, 4500, 4500, 4500, 4500, 4500, 4500, 4500,
        ),
        "Zaxxon": (0,) * 16,
    },
    "JOWA_40M": {
        "Assault": (850, 850, 2666, 1227, 756, 903, 756, 1952, 1396, 892, 1027, 2919, 1521, 2499, 756, 1396),
        "Atlantis": (
            36100, 59500, 59500, 59500, 59500, 19100, 59500, 59500,
            59500, 59500, 59500, 59500, 59500, 19100, 59500, 59500,
        ),
        "BeamRider": (
            1092, 1092, 900, 1092, 1092, 1092, 660, 1092,
            1092, 1092, 616, 1092, 1092, 1092, 900, 352,
        ),
        "Berzerk": (400, 590, 400, 590, 450, 400, 450, 590, 400, 300, 150, 400, 590, 590, 590, 400),
        "Carnival": (
            5460, 5460, 5460, 5460, 5460, 5460, 5460, 5460,
            5460, 5460, 5460, 5460, 5460, 5460, 5460, 4960,
        ),
        "Centipede": (
            4295, 4295, 4295, 4295, 1535, 4295, 4295, 6201,
            4337, 6201, 4295, 6201, 4295, 6201, 2394, 4295,
        ),
        "ChopperCommand": (3700,) * 16,
        "DemonAttack": (
            5540, 5540, 5540, 110, 5540, 5540, 5540, 110,
            110, 5540, 5540, 5540, 50, 220, 90, 110,
        ),
        "NameThisGame": (
            8350, 11780, 11780, 11780, 11780, 11780, 11780, 11780,
            11780, 11780, 11780, 11780, 11780, 11780, 11780, 8560,
        ),
        "Phoenix": (
            5030, 560, 5030, 5030, 5030, 5030, 5030, 5030,
            5030, 5030, 5030, 5030, 5030, 340, 5030, 5030,
        ),
        "Seaquest": (440, 440, 340, 440, 440, 380, 2870, 480, 2870, 440, 440, 580, 340, 2870, 440, 340),
        "SpaceInvaders": (830, 830, 830, 830, 830, 830, 830, 830, 830, 830, 830, 830, 830, 830, 440, 830),
        "StarGunner": (
            7200, 7200, 7200, 7200, 7200, 7200, 7200, 7200,
            3400, 7200, 7200, 7200, 7200, 7200, 5000, 7200,
        ),
        "TimePilot": (
            4300, 4300, 4300, 4300, 4300, 4300, 4000, 4300,
            4300, 4300, 4300, 4300, 4300, 4000, 4300, 4300,
        ),
        "Zaxxon": (0,) * 16,
    },
}

def _planning_settings(size: str) -> dict[str, PlanningSetting]:
    horizon, table = paper_settings(size)
    return {game: PlanningSetting(row.context, row.beam_width, horizon) for game, row in table.items()}


# Read from configs/eval/jowa_*.yaml (what `plan.py --settings` takes): the table exists once.
PAPER_PLANNING_SETTINGS: dict[str, dict[str, PlanningSetting]] = {
    f"JOWA_{size}": _planning_settings(size) for size in ("150M", "70M", "40M")
}
