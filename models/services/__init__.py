"""Services: the functions that change data; views, CLI and flows call them."""
