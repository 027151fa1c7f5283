# Réponse à une proposition de coopération (cooperation.answered).
# Noms : staff_name, why, link, structure, answer, comment, title,
# from_structure, department, category
[subject]
Coopération « {{title}} » : {{answer}}
[text]
Bonjour {{staff_name}},

{{structure}} a répondu à la proposition de coopération faite par {{from_structure}} (« {{title}} ») : {{answer}}.
{{comment}}

Suivre la proposition : {{link}}

{{why}}
[html]
<p>Bonjour {{staff_name}},</p>
<p><strong>{{structure}}</strong> a répondu à la proposition de coopération faite par {{from_structure}} (« {{title}} ») : <strong>{{answer}}</strong>.</p>
<p>{{comment}}</p>
<p><a href="{{link}}">Suivre la proposition</a></p>
<p style="color:#666;font-size:smaller">{{why}}</p>
