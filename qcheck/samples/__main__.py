from qcheck.samples import HEALTHY

print(HEALTHY)
