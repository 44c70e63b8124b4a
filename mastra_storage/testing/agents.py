"""placeholder"""
class AgentsConformance:
    pass
