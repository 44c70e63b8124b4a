"""placeholder"""
class ObservabilityConformance:
    pass
