"""Children of the signed-in parent: profiles that personalise the content endpoints."""
