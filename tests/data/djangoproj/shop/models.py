from django.db import models


class Product(models.Model):
    tenant = models.ForeignKey("customers.Tenant", on_delete=models.CASCADE)
    name = models.CharField(max_length=100)
    price_cents = models.IntegerField(default=0)
