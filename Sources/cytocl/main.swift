print("cytocl")
