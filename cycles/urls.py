from django.urls import path

from cycles import views

app_name = "cycles"
urlpatterns = [
    path("my-work/", views.my_work, name="my-work"),
    path("cycles/", views.cycle_list, name="cycle-list"),
    path("cycles/new/", views.cycle_create_view, name="cycle-create"),
    path("cycles/<int:pk>/", views.cycle_detail, name="cycle-detail"),
    path("cycles/<int:pk>/progress/", views.cycle_progress, name="cycle-progress"),
    path("cycles/<int:pk>/reports/add/", views.cycle_add_report_view, name="cycle-add-report"),
    path("cycles/<int:pk>/start/", views.cycle_start, name="cycle-start"),
    path("cycles/<int:pk>/cancel/", views.cycle_cancel, name="cycle-cancel"),
    path("cycle-reports/<int:pk>/", views.cycle_report_detail, name="cycle-report"),
    path("cycle-reports/<int:pk>/tester/", views.cycle_report_assign_tester_view, name="cycle-report-assign-tester"),
    path("cycle-reports/<int:pk>/submit/<str:phase>/", views.phase_submit, name="phase-submit"),
    path("cycle-reports/<int:pk>/planning/", views.planning, name="planning"),
    path("cycle-reports/<int:pk>/planning/attributes/<int:attribute_id>/", views.attribute_edit,
         name="attribute-edit"),
    path("cycle-reports/<int:pk>/planning/attributes/<int:attribute_id>/delete/", views.attribute_delete_view,
         name="attribute-delete"),
    path("cycle-reports/<int:pk>/data-profiling/", views.data_profiling, name="data-profiling"),
    path("cycle-reports/<int:pk>/data-profiling/files/<int:file_id>/download/", views.population_download,
         name="population-download"),
    path("cycle-reports/<int:pk>/scoping/", views.scoping, name="scoping"),
]
