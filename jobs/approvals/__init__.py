"""The approval flow: propose a change, word its CRM task, settle a verdict, close the task."""
