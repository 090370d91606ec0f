"""A person's own settings page: their name and the time zone they read times in."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from backend.errors import ApplicationError
from backend.services.auth import user_update
from backend.web.forms import AccountForm


@login_required
@require_http_methods(["GET", "POST"])
def account_page(request):
    form = AccountForm(request.POST or None, initial={"name": request.user.name, "time_zone": request.user.time_zone})
    if request.method == "POST" and form.is_valid():
        try:
            user_update(user=request.user, **form.cleaned_data)
            messages.success(request, f"Saved. Times are shown in {request.user.time_zone}.")
            return redirect("web:account")
        except ApplicationError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
    return render(request, "web/account.html", {"form": form}, status=422 if form.errors else 200)
