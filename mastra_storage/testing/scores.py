"""placeholder"""
class ScoresConformance:
    pass
