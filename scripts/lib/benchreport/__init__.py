# SPDX-License-Identifier: Apache-2.0
"""scripts/bench-report.py's parts: parse (JMH and strace output), targets (what segfit must
meet, as a table), text (names and number formats), render (the Markdown report), charts."""
