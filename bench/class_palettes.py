"""Which categorical palette to offer as "colour-blind safe" for up to 10 classes, beside tab10 (the default).

For each candidate palette and for its first n colours (n = 8, and n = 10 where it has ten), prints the smallest
pairwise CIEDE2000 difference under normal vision and under simulated protanopia, deuteranopia and tritanopia
(Machado et al. 2009, severity 1.0), the pair that gives it, and the lowest WCAG contrast ratio of any colour against
a white (#ffffff) and a dark (#1e1e1e) page. Ends with a recommendation chosen by the worst case over the three
simulations, and a greedy ordering of the recommended palette so that its first k colours stay as far apart as
possible. Everything is computed here with numpy (sRGB, XYZ, CIELAB, CIEDE2000, WCAG); a self-check against published
reference values runs first and stops the script if the colour maths is off.

    python bench/class_palettes.py

No arguments; the figures do not depend on the machine.
"""

from __future__ import annotations

import numpy as np

# name -> (where it comes from, colours in the order the source gives them)
PALETTES: dict[str, tuple[str, list[str]]] = {
    "tab10": (
        "matplotlib's default cycle (Tableau 10, 2007)",
        ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"],
    ),
    "okabe-ito": (
        "Okabe & Ito 2002, 'Color Universal Design' (8 colours)",
        ["#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"],
    ),
    "petroff10": (
        "Petroff 2021 (arXiv:2107.02270), matplotlib style 'petroff10'",
        ["#3f90da", "#ffa90e", "#bd1f01", "#94a4a2", "#832db6", "#a96b59", "#e76300", "#b9ac70", "#717581", "#92dadd"],
    ),
    "petroff8": (
        "Petroff 2021, its 8-colour cycle, matplotlib style 'petroff8'",
        ["#1845fb", "#ff5e02", "#c91f16", "#c849a9", "#adad7d", "#86c8dd", "#578dff", "#656364"],
    ),
    "tol-muted": (
        "Paul Tol, 'Colour schemes' (SRON/EPS/TN/09-002), muted + its pale grey as 10th",
        ["#CC6677", "#332288", "#DDCC77", "#117733", "#88CCEE", "#882255", "#44AA99", "#999933", "#AA4499", "#DDDDDD"],
    ),
    "tol-light": (
        "Paul Tol, 'Colour schemes', light (9 colours incl. pale grey)",
        ["#77AADD", "#EE8866", "#EEDD88", "#FFAABB", "#99DDFF", "#44BB99", "#BBCC33", "#AAAA00", "#DDDDDD"],
    ),
    "tableau-cb10": (
        "Tableau 'Color Blind 10', matplotlib style 'tableau-colorblind10'",
        ["#006BA4", "#FF800E", "#ABABAB", "#595959", "#5F9ED1", "#C85200", "#898989", "#A2C8EC", "#FFBC79", "#CFCFCF"],
    ),
    "seaborn-cb": (
        "seaborn's 'colorblind' palette (seaborn/palettes.py, Okabe-Ito based)",
        ["#0173B2", "#DE8F05", "#029E73", "#D55E00", "#CC78BC", "#CA9161", "#FBAFE4", "#949494", "#ECE133", "#56B4E9"],
    ),
}
# Measured only as the "past 10 classes" option: matplotlib's tab20 (tab10 plus a lighter twin of each).
TAB20 = ["#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896", "#9467bd", "#c5b0d5",
         "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d", "#17becf", "#9edae5"]
# Checked against matplotlib's bundled style sheets in self_check() when matplotlib is there.
MPL_STYLES = {"petroff10": "petroff10", "petroff8": "petroff8", "tableau-cb10": "tableau-colorblind10"}

# Machado, Oliveira & Fernandes (2009), "A physiologically-based model for simulation of color vision deficiency",
# IEEE TVCG 15(6):1291-1298; the severity-1.0 matrices from the authors' published table
# (www.inf.ufrgs.br/~oliveira/pubs_files/CVD_Simulation/CVD_Simulation.html). They act on LINEAR sRGB, not on
# gamma-encoded values, which is the usual mistake. Each row sums to 1, so greys (and white) stay put.
MACHADO = {
    "protan": np.array([[0.152286, 1.052583, -0.204868],
                        [0.114503, 0.786281, 0.099216],
                        [-0.003882, -0.048116, 1.051998]]),
    "deutan": np.array([[0.367322, 0.860646, -0.227968],
                        [0.280085, 0.672501, 0.047413],
                        [-0.011820, 0.042940, 0.968881]]),
    "tritan": np.array([[1.255528, -0.076749, -0.178779],
                        [-0.078411, 0.930809, 0.147602],
                        [0.004733, 0.691367, 0.303900]]),
}
VISIONS = ("normal", "protan", "deutan", "tritan")
CVDS = VISIONS[1:]

# IEC 61966-2-1 sRGB primaries, D65 white. The white point is taken from the matrix itself so #ffffff lands on
# exactly L*=100, a*=b*=0 (the rounded textbook Xn, Zn are off in the 4th decimal).
SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
WHITE_XYZ = SRGB_TO_XYZ.sum(axis=1)

WHITE_PAGE = "#ffffff"
DARK_PAGE = "#1e1e1e"
SMALL_MARKER_DE = 10.0  # common rule of thumb: below ~10 ΔE00 small scatter markers get confused


def hex_to_srgb(hexes: list[str]) -> np.ndarray:
    """'#rrggbb' strings -> (n, 3) gamma-encoded sRGB in [0, 1]."""
    return np.array([[int(h.lstrip("#")[k:k + 2], 16) / 255.0 for k in (0, 2, 4)] for h in hexes])


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 decoding (the 0.04045 knee; WCAG 2's 0.03928 gives identical results for 8-bit values)."""
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    """Inverse of srgb_to_linear."""
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * np.power(np.maximum(c, 0.0), 1 / 2.4) - 0.055)


def linear_to_lab(lin: np.ndarray) -> np.ndarray:
    """Linear sRGB -> XYZ (D65) -> CIELAB."""
    t = (lin @ SRGB_TO_XYZ.T) / WHITE_XYZ
    eps, kappa = 216 / 24389, 24389 / 27  # CIE's exact constants, not the rounded 0.008856 / 903.3
    f = np.where(t > eps, np.cbrt(t), (kappa * t + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def simulate(lin: np.ndarray, vision: str) -> np.ndarray:
    """Linear sRGB as seen with the given vision; clipped because the matrices can leave the display gamut."""
    if vision == "normal":
        return lin
    return np.clip(lin @ MACHADO[vision].T, 0.0, 1.0)


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 (kL = kC = kH = 1), broadcasting over leading axes; follows Sharma, Wu & Dalal 2005 step by step."""
    L1, a1, b1 = np.moveaxis(np.asarray(lab1, float), -1, 0)
    L2, a2, b2 = np.moveaxis(np.asarray(lab2, float), -1, 0)
    c7 = ((np.hypot(a1, b1) + np.hypot(a2, b2)) / 2) ** 7
    g = 0.5 * (1 - np.sqrt(c7 / (c7 + 25.0 ** 7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    achromatic = c1p * c2p == 0  # hue is undefined: its difference counts as 0 and the mean hue is the plain sum

    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(achromatic, 0.0, dh)
    d_l, d_c = L2 - L1, c2p - c1p
    d_h = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))

    l_bar, c_bar = (L1 + L2) / 2, (c1p + c2p) / 2
    h_sum = h1p + h2p
    h_bar = np.where(np.abs(h1p - h2p) <= 180, h_sum / 2, np.where(h_sum < 360, (h_sum + 360) / 2, (h_sum - 360) / 2))
    h_bar = np.where(achromatic, h_sum, h_bar)

    t = (1 - 0.17 * np.cos(np.radians(h_bar - 30)) + 0.24 * np.cos(np.radians(2 * h_bar))
         + 0.32 * np.cos(np.radians(3 * h_bar + 6)) - 0.20 * np.cos(np.radians(4 * h_bar - 63)))
    d_theta = 30 * np.exp(-(((h_bar - 275) / 25) ** 2))
    cb7 = c_bar ** 7
    r_t = -2 * np.sqrt(cb7 / (cb7 + 25.0 ** 7)) * np.sin(np.radians(2 * d_theta))
    s_l = 1 + 0.015 * (l_bar - 50) ** 2 / np.sqrt(20 + (l_bar - 50) ** 2)
    s_c = 1 + 0.045 * c_bar
    s_h = 1 + 0.015 * c_bar * t
    tl, tc, th = d_l / s_l, d_c / s_c, d_h / s_h
    return np.sqrt(tl ** 2 + tc ** 2 + th ** 2 + r_t * tc * th)


def pairwise_de(hexes: list[str], vision: str) -> np.ndarray:
    """(n, n) ΔE00 between every two colours as seen with `vision`; +inf on the diagonal so min() skips it."""
    lab = linear_to_lab(simulate(srgb_to_linear(hex_to_srgb(hexes)), vision))
    de = ciede2000(lab[:, None, :], lab[None, :, :])
    np.fill_diagonal(de, np.inf)
    return de


def closest_pair(de: np.ndarray) -> tuple[float, int, int]:
    """Smallest off-diagonal entry and its (i, j), i < j."""
    i, j = np.unravel_index(np.argmin(de), de.shape)
    return float(de[i, j]), int(min(i, j)), int(max(i, j))


def contrast_ratio(hex_a: str, hex_b: str) -> float:
    """WCAG 2 contrast ratio (L_light + 0.05) / (L_dark + 0.05), with WCAG's own luminance weights (they sum to
    exactly 1, unlike the 7-digit XYZ row, so black on white comes out at exactly 21)."""
    ya, yb = srgb_to_linear(hex_to_srgb([hex_a, hex_b])) @ np.array([0.2126, 0.7152, 0.0722])
    hi, lo = max(ya, yb), min(ya, yb)
    return float((hi + 0.05) / (lo + 0.05))


def worst_contrast(hexes: list[str], page: str) -> tuple[float, str]:
    """Lowest contrast of any palette colour against the page, and that colour."""
    ratios = [contrast_ratio(h, page) for h in hexes]
    k = int(np.argmin(ratios))
    return ratios[k], hexes[k]


def measure(hexes: list[str]) -> dict:
    """Everything the tables report, for one palette prefix."""
    out: dict = {v: closest_pair(pairwise_de(hexes, v)) for v in VISIONS}
    out["cvd_worst"] = min(CVDS, key=lambda v: out[v][0])
    out["white"] = worst_contrast(hexes, WHITE_PAGE)
    out["dark"] = worst_contrast(hexes, DARK_PAGE)
    return out


def worst_case_matrix(hexes: list[str]) -> np.ndarray:
    """Per pair, the smallest ΔE00 over normal vision and the three simulations."""
    return np.minimum.reduce([pairwise_de(hexes, v) for v in VISIONS])


def greedy_order(hexes: list[str]) -> tuple[list[int], list[float]]:
    """Order the colours so each prefix keeps its worst-case ΔE00 high: start from the most distinct pair, then
    repeatedly add the colour whose nearest already-chosen colour is farthest. Returns the order and, for k = 2..n,
    the worst-case min ΔE00 of the first k colours. Greedy, not optimal, but n is 10 so it is cheap and close."""
    de = worst_case_matrix(hexes)
    finite = np.where(np.isinf(de), -np.inf, de)
    i, j = np.unravel_index(np.argmax(finite), de.shape)
    order = [int(i), int(j)]
    prefix_min = [float(de[i, j])]
    while len(order) < len(hexes):
        rest = [k for k in range(len(hexes)) if k not in order]
        best = max(rest, key=lambda k: de[k, order].min())
        prefix_min.append(min(prefix_min[-1], float(de[best, order].min())))
        order.append(best)
    return order, prefix_min


def self_check() -> None:
    """Stop before printing anything if the colour maths disagrees with published reference values."""
    # Sharma, Wu & Dalal (2005), Color Res. Appl. 30(1):21-30, Table 1: pairs 1, 2, 3, 4, 7, 8, 13, 17, 25, 34.
    # They cover the G term, hue-angle wrap-around, the mean-hue branch at 180 degrees, achromatic colours and very
    # dark colours. The published values are rounded to 4 decimals.
    sharma = [
        ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
        ((50.0, 3.1571, -77.2803), (50.0, 0.0, -82.7485), 2.8615),
        ((50.0, 2.8361, -74.0200), (50.0, 0.0, -82.7485), 3.4412),
        ((50.0, -1.3802, -84.2814), (50.0, 0.0, -82.7485), 1.0000),
        ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
        ((50.0, -1.0, 2.0), (50.0, 0.0, 0.0), 2.3669),
        ((50.0, 2.4900, -0.0010), (50.0, -2.4900, 0.0009), 7.1792),
        ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
        ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
        ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
    ]
    for lab1, lab2, want in sharma:
        for a, b in ((lab1, lab2), (lab2, lab1)):  # the formula must be symmetric
            got = float(ciede2000(np.array(a), np.array(b)))
            assert round(got, 4) == want, f"CIEDE2000 {a} {b}: got {got:.6f}, Sharma et al. give {want}"

    lab_white = linear_to_lab(srgb_to_linear(hex_to_srgb(["#ffffff"])))[0]
    assert np.allclose(lab_white, [100, 0, 0], atol=1e-9), lab_white
    # sRGB #ff0000 is L*=53.24, a*=80.09, b*=67.20 (D65, the usual published figure)
    lab_red = linear_to_lab(srgb_to_linear(hex_to_srgb(["#ff0000"])))[0]
    assert np.allclose(lab_red, [53.2408, 80.0925, 67.2032], atol=2e-3), lab_red
    codes = np.arange(256) / 255
    assert np.allclose(linear_to_srgb(srgb_to_linear(codes)), codes, atol=1e-12)

    assert abs(contrast_ratio("#000000", "#ffffff") - 21.0) < 1e-9
    assert round(contrast_ratio("#777777", "#ffffff"), 2) == 4.48  # the well-known "#777 just fails AA" figure
    for name, m in MACHADO.items():
        assert np.allclose(m.sum(axis=1), 1.0, atol=2e-6), f"{name} rows must sum to 1"

    try:
        import matplotlib
        import matplotlib.colors
        import matplotlib.style
    except ImportError:
        return
    for name, cmap in (("tab10", "tab10"), ("tab20", "tab20")):
        mine = PALETTES["tab10"][1] if name == "tab10" else TAB20
        theirs = [matplotlib.colors.to_hex(c) for c in matplotlib.colormaps[cmap].colors]
        assert theirs == mine, f"{name} differs from matplotlib's"
    for name, style in MPL_STYLES.items():
        sheet = matplotlib.style.library.get(style)
        if sheet is not None:
            mpl = [c.lower().lstrip("#") for c in sheet["axes.prop_cycle"].by_key()["color"]]
            assert mpl == [h.lower().lstrip("#") for h in PALETTES[name][1]], f"{name} differs from matplotlib {style}"


def fmt_pair(hexes: list[str], i: int, j: int) -> str:
    return f"{hexes[i]}/{hexes[j]}"


def rows() -> list[tuple[str, int, list[str], dict]]:
    """(palette, n, colours, measurements) for n = 8 and n = 10 where the palette has that many."""
    out = []
    for name, (_, hexes) in PALETTES.items():
        for n in (8, 10):
            if len(hexes) >= n:
                out.append((name, n, hexes[:n], measure(hexes[:n])))
    return out


def print_sources() -> None:
    print("## Candidates\n")
    for name, (source, hexes) in PALETTES.items():
        print(f"- **{name}** ({len(hexes)}): {source}: {' '.join(hexes)}")
    print()


def print_main_table(table) -> None:
    print("## Smallest pairwise CIEDE2000 and WCAG contrast\n")
    print("Simulations: Machado et al. 2009, severity 1.0, linear RGB. Contrast: lowest over the palette's colours.\n")
    print("| palette | n | min ΔE00 normal | protan | deutan | tritan | worst pair under any CVD | "
          "min contrast on #ffffff | on #1e1e1e |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, n, hexes, m in table:
        v = m["cvd_worst"]
        worst = f"{fmt_pair(hexes, m[v][1], m[v][2])} ({v}, {m[v][0]:.1f})"
        print(f"| {name} | {n} | {m['normal'][0]:.1f} | {m['protan'][0]:.1f} | {m['deutan'][0]:.1f} | "
              f"{m['tritan'][0]:.1f} | {worst} | {m['white'][0]:.2f} ({m['white'][1]}) | "
              f"{m['dark'][0]:.2f} ({m['dark'][1]}) |")
    print()


def print_pair_table(table) -> None:
    print("## Which pair is closest, per vision\n")
    print("| palette | n | normal | protan | deutan | tritan |")
    print("|---|---|---|---|---|---|")
    for name, n, hexes, m in table:
        cells = [fmt_pair(hexes, m[v][1], m[v][2]) for v in VISIONS]
        print(f"| {name} | {n} | " + " | ".join(cells) + " |")
    print()


def cvd_floor(m: dict) -> float:
    return min(m[v][0] for v in CVDS)


def print_greedy(hexes: list[str]) -> list[float]:
    """The greedy ordering as a table; returns the prefix minima."""
    order, prefix = greedy_order(hexes)
    print("## Greedy ordering of the recommended palette\n")
    print("Each prefix maximises the smallest ΔE00 over normal vision and the three simulations (greedy).\n")
    print("| k | colour added | worst-case min ΔE00 of first k |")
    print("|---|---|---|")
    print(f"| 1 | {hexes[order[0]]} | - |")
    for k in range(2, len(order) + 1):
        print(f"| {k} | {hexes[order[k - 1]]} | {prefix[k - 2]:.1f} |")
    print(f"\nOrdered: {', '.join(repr(hexes[i]) for i in order)}\n")
    return prefix


def print_recommendation(table) -> None:
    # tab10 stays the default whatever happens; the choice is among the 10-colour alternatives.
    ten = sorted([(name, hexes, m) for name, n, hexes, m in table if n == 10 and name != "tab10"],
                 key=lambda r: -cvd_floor(r[2]))
    (best_name, best_hexes, best), (second_name, _, second) = ten[0], ten[1]
    tab10 = next(m for name, n, _, m in table if name == "tab10" and n == 10)
    ranking = ", ".join(f"{name} {cvd_floor(m):.1f}" for name, _, m in ten)
    prefix = print_greedy(best_hexes)
    tab20_floor = cvd_floor(measure(TAB20))
    v, tv = best["cvd_worst"], tab10["cvd_worst"]

    print("## Recommendation\n")
    print(" ".join([
        f"Ranked by the worst-case min ΔE00 over protanopia, deuteranopia and tritanopia at 10 colours "
        f"({ranking}; tab10 itself {cvd_floor(tab10):.1f}), offer **{best_name}** as the colour-blind-safe "
        f"palette for up to 10 classes. Its weakest pair is {fmt_pair(best_hexes, best[v][1], best[v][2])} under "
        f"{v} at {best[v][0]:.1f}, where tab10's {fmt_pair(PALETTES['tab10'][1], tab10[tv][1], tab10[tv][2])} "
        f"collapses to {tab10[tv][0]:.1f} under {tv}.",
        margin_sentence(best, prefix),
        runner_up_sentence(best_name, best, second_name, second),
        contrast_sentence(table, best_name, best),
        f"Past 10 classes, do not add hues: tab20's worst CVD pair is at {tab20_floor:.1f} ΔE00. Instead reuse "
        f"the 10 colours with a second marker shape (class 11 = colour 1 + shape 2, and so on) and rely on hover "
        f"labels and a clickable legend.",
    ]))


def margin_sentence(best: dict, prefix: list[float]) -> str:
    """How the winner sits against the ~10 ΔE00 rule of thumb, whole and by greedy prefix."""
    k_ok = max([k for k, d in zip(range(2, 11), prefix) if d >= SMALL_MARKER_DE], default=1)
    if cvd_floor(best) >= SMALL_MARKER_DE:
        return (f"Every pair stays above the ~{SMALL_MARKER_DE:.0f} ΔE00 small markers need under all three "
                f"simulations, and in the greedy order above the first 6 keep at least {prefix[4]:.1f}.")
    return (f"Even it drops below ~{SMALL_MARKER_DE:.0f} ΔE00 somewhere at 10 colours; in the greedy order above "
            f"the first {k_ok} stay above it.")


def runner_up_sentence(best_name: str, best: dict, second_name: str, second: dict) -> str:
    """Whether the dark page confirms or questions the choice against the runner-up."""
    gap = cvd_floor(best) - cvd_floor(second)
    if second["dark"][0] < best["dark"][0]:
        return (f"The runner-up {second_name} is {gap:.1f} ΔE00 behind, and the dark mode confirms the choice: "
                f"{second_name}'s {second['dark'][1]} reaches only {second['dark'][0]:.2f}:1 on {DARK_PAGE} against "
                f"{best['dark'][0]:.2f}:1 for {best_name}'s lowest ({best['dark'][1]}).")
    return (f"The runner-up {second_name} is {gap:.1f} ΔE00 behind but holds up better on {DARK_PAGE} "
            f"({second['dark'][0]:.2f}:1 against {best['dark'][0]:.2f}:1), worth weighing if dark mode dominates.")


def contrast_sentence(table, best_name: str, best: dict) -> str:
    """The WCAG 2.1 SC 1.4.11 3:1 for graphical objects, on both pages."""
    both = [name for name, n, _, m in table if min(m["white"][0], m["dark"][0]) >= 3.0]
    who = "No candidate" if not both else f"Only {', '.join(sorted(set(both)))}"
    return (f"{who} reaches the 3:1 WCAG 2.1 (SC 1.4.11) asks of graphical objects on both pages ({best_name}: "
            f"{best['white'][0]:.2f}:1 on white for {best['white'][1]}, {best['dark'][0]:.2f}:1 on {DARK_PAGE}), so "
            f"draw markers with a thin outline in the page's contrasting colour.")


def main() -> None:
    self_check()
    table = rows()
    print_sources()
    print_main_table(table)
    print_pair_table(table)
    print_recommendation(table)


if __name__ == "__main__":
    main()
