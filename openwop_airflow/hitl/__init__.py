"""Asking a person in Airflow (``on_interrupt="ask_in_airflow"``): ``ask_in_airflow`` (the operators' side),
``question`` (what a waiting task keeps), ``forms`` (the request a person sees, the value sent back),
``events`` (what resumes the task), ``support`` (Airflow's human-in-the-loop calls) and ``interrupt_wait``
(watching the interrupt on the host meanwhile). The trigger is ``triggers.hitl``."""
