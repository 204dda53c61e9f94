"""Bookings: free slots and booking a call through Cal.com for a lead."""
