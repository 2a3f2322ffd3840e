"""One adapter per input kind; each turns raw input into a Subject."""
