"""Exercise 4, the misconception: priorities are fair, every class waits what FIFO would give."""


def class_waits(arrival_rates: list[float], mean_services_s: list[float]) -> list[float]:
    rho = sum(lam * s for lam, s in zip(arrival_rates, mean_services_s, strict=True))
    residual = sum(lam * s * s for lam, s in zip(arrival_rates, mean_services_s, strict=True))
    return [residual / (1 - rho)] * len(arrival_rates)
