"""Mappings between ladderback and clinical standards: FHIR R4 resources and CDS Hooks."""
