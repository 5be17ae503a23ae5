"""Patient privacy consent (IHE BPPC, ITI TF-1 §19): who may see a patient's documents."""
