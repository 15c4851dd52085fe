"""skysync's sync engine: providers, policy, state, reconcile and the sync pass. No UI imports here."""
