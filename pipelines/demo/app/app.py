"""The demo app: a little numerical work with the stack below it, then a line saying which image this is."""

import numpy
import scipy
from scipy import integrate, linalg

matrix = numpy.array([[4.0, 1.0], [2.0, 3.0]])
solution = linalg.solve(matrix, numpy.array([1.0, 2.0]))
area, _ = integrate.quad(numpy.sin, 0, numpy.pi)
print(f"numpy {numpy.__version__}, scipy {scipy.__version__}")
print(f"solve [[4, 1], [2, 3]] x = [1, 2]: x = {numpy.round(solution, 4).tolist()}")
print(f"integral of sin over [0, pi] = {area:.6f}")
print("buildflow demo app: ok")
