"""The archiver's work: which objects are old enough, and moving them without losing one."""
