"""placeholder"""
class WorkflowsConformance:
    pass
