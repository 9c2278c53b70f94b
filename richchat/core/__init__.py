"""Everything that is not CLI glue lives here."""
