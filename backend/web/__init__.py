"""Server-rendered pages for the user's flow: browse mentors, book and pay, see and cancel
sessions. Views call the same services as backend/api/, never the API over HTTP."""
