"""The clinical rules, one module a stage: triage, review, programme, selection,
progression (with stepping), easing, scheduling. ``app.domain.rulebook`` lists them all."""
