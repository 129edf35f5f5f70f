"""Outbound allocation and simulation: the decision pipeline over a whole population at
once, as set-based SQL (DuckDB by default; the same SQL through sqlglot on Spark).

candidates.py   who may get which offer on a placement, with what score (steps 1, 2, 4)
allocate.py     policies and arbitration in rounds over every recipient (steps 3, 5)
"""

from overture.batch.allocate import allocate
from overture.batch.candidates import RECIPIENT, CandidateQuery, candidates_query

__all__ = ["RECIPIENT", "CandidateQuery", "allocate", "candidates_query"]
