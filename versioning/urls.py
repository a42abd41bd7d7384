from django.urls import path

app_name = "versioning"
urlpatterns: list = []
