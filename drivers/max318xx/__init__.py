"""drivers/max318xx"""
