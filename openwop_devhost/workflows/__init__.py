"""Workflow definitions: the model the engine walks (:mod:`.model`), reading JSON documents and folders
(:mod:`.loading`, with :class:`~.loading.WorkflowLoadError`), and the built-in catalogue (:mod:`.catalogue`)."""
