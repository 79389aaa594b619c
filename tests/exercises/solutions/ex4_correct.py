"""Exercise 4, a correct solution: Cobham's formula."""


def class_waits(arrival_rates: list[float], mean_services_s: list[float]) -> list[float]:
    residual = sum(lam * 2 * s * s for lam, s in zip(arrival_rates, mean_services_s, strict=True)) / 2
    waits = []
    above = 0.0
    for lam, s in zip(arrival_rates, mean_services_s, strict=True):
        upto = above + lam * s
        waits.append(residual / ((1 - above) * (1 - upto)))
        above = upto
    return waits
