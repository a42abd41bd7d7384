from django.urls import path

from versioning import views

app_name = "versioning"
urlpatterns = [
    path("versions/<int:pk>/", views.version_detail, name="version-detail"),
    path("versions/<int:pk>/decide/", views.version_decide, name="version-decide"),
    path("cycle-reports/<int:pk>/versions/<str:phase>/", views.version_history, name="version-history"),
]
