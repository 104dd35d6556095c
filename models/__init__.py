"""Tables, the database session and the services that change them."""
