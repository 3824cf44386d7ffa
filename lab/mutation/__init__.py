"""Mutation testing (issue 22): mutmut 3 on one module at a time, results as data.

``make mutation`` (``python -m lab.mutation``) runs every target of
``lab/mutation/targets.toml`` (:mod:`lab.mutation.targets`) one after another, each module
mutated by mutmut and tested by the test subset that covers it (:mod:`lab.mutation.run`), and
writes one JSON file per target (default ``reports/mutation/<time>/<name>.json``; the nightly
writes them into its run directory's ``mutation/``, where the report reads them)::

    name, module, tests, mutant_filter    what ran
    hypothesis_profile, mutmut, git        with what (the profile bounds the score from below)
    started, duration_s, budget_s, complete, error, exit_code
    mutants        every mutant generated
    killed         noticed by the tests: killed, timed out, crashed
    survived       not noticed: survived, or no test reaches the mutated function
    not_checked    not run (budget spent, interrupted)
    statuses       mutmut's status -> count
    score          killed / (killed + survived), 0..1 (null when nothing was scored)
    message_only   {mutants, survived}: mutants that only change a message (an exception's
                   message argument, an assert's message, a logging call's format; not an
                   exception's other arguments: lab.mutation.results.message_only)
    score_excluding_messages   the score without them: the one min_score gates
    min_score, passed
    survivors      [{key, status, function, line, change, message_only, diff}], by line

``mutmut`` itself is in the ``dev`` extra; the work directories (``.mutation/<name>/``) are kept
until the next run, so ``cd .mutation/<name> && mutmut show <key>`` works after a run.
"""
