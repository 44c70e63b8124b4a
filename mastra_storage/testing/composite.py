"""placeholder"""
class CompositeConformance:
    pass
